package policy

// Cacheable reports whether e caches decisions of its current policy set.
func Cacheable(e *Engine) bool { return e.cur.Load().cache != nil }
