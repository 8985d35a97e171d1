# Incident #5: Nx s1ngularity malware drives AI CLIs (Aug 2025)
#
# Malicious nx releases ran local AI CLIs to hunt for secrets and
# published them in new public repositories under the victim's account;
# a second wave made private repositories public. Making a repository
# public and deleting one are denied; creating a repository waits for a
# human.
package countersign

# METADATA
# title: INC-05-1
# description: No agent makes a repository public.
deny contains {
	"id": "INC-05-1",
	"msg": sprintf("making %s/%s public is not allowed; ask a human", [input.action.owner, input.action.repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/update"
	input.action.public_exposure == true
}

# METADATA
# title: INC-05-2
# description: No agent deletes a repository.
deny contains {
	"id": "INC-05-2",
	"msg": sprintf("deleting %s/%s is not allowed; ask a human", [input.action.owner, input.action.repo]),
} if {
	input.action.provider == "github"
	input.action.operation == "repos/delete"
}

inc05_creates_repository if input.action.operation in {
	"repos/create-for-authenticated-user", "repos/create-in-org",
	"repos/create-using-template", "repos/create-fork",
}

inc05_creates_repository if {
	input.action.provider == "github"
	"createRepository" in input.action.fields
}

# METADATA
# title: INC-05-3
# description: Creating a repository waits for a human.
approve contains {
	"id": "INC-05-3",
	"msg": sprintf("%s creates a repository%s: new repositories are where the Nx malware published stolen secrets, so a human checks it", [input.action.operation, inc05_visibility]),
} if {
	input.action.provider == "github"
	inc05_creates_repository
}

inc05_visibility := " that is PUBLIC" if {
	input.action.public_exposure == true
} else := ""
