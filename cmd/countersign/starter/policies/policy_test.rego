package countersign_test

import data.countersign

test_metadata_denied if {
	count(countersign.deny) == 1 with input as {"request": {"method": "GET", "host": "169.254.169.254", "path": "/"}}
}

test_github_delete_held if {
	count(countersign.approve) == 1 with input as {"request": {"method": "DELETE", "host": "api.github.com", "path": "/repos/o/r"}}
}

test_read_allowed if {
	count(countersign.approve) == 0 with input as {"request": {"method": "GET", "host": "api.github.com", "path": "/repos/o/r"}}
}
