package approval

// Held returns how many requests are being held open right now, waiting for
// a human (several may wait on one approval). It is for metrics.
func (b *Broker) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, ws := range b.waiters {
		for _, w := range ws {
			if !w.settled {
				n++
			}
		}
	}
	return n
}
