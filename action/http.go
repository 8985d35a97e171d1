package action

// HTTP is the generic provider: the operation is the method, and GET, HEAD and
// OPTIONS are read-only. It is the fallback for every request no other
// provider recognises.
func HTTP(r *Request) Action {
	a := Action{Provider: "http", Operation: r.Method}
	if r.Tunnel {
		a.Operation = "CONNECT"
		return a
	}
	switch r.Method {
	case "GET", "HEAD", "OPTIONS":
		// An upgraded connection carries whatever the two ends want to say
		// after the switch: it is not a read.
		a.ReadOnly = r.Upgrade == ""
	case "DELETE":
		a.Destructive = true
	}
	return a
}
