package patterns

// A batch of packets that keeps a shard's lock from one packet to the next
// while they are for the same shard (the root package's inputBatch) holds
// a lock the analyzer cannot name; the same work cut into runs, each
// under its shard's lock taken and released in one place, it follows.

type packet struct {
	sh *shard
	id uint32
}

// inputHeld keeps the last packet's shard locked in a variable.
func inputHeld(batch []packet) {
	var held *shard
	defer func() {
		if held != nil {
			held.mu.Unlock() // reported: already unlocked
		}
	}()
	for _, p := range batch {
		if held != p.sh {
			if held != nil {
				held.mu.Unlock() // reported: already unlocked
			}
			p.sh.mu.Lock()
			held = p.sh
		}
	}
}

// inputRuns cuts the batch into runs of one shard.
func inputRuns(batch []packet) {
	for len(batch) > 0 {
		sh, n := batch[0].sh, 1
		for n < len(batch) && batch[n].sh == sh {
			n++
		}
		sh.mu.Lock()
		sh.input(batch[:n])
		sh.mu.Unlock()
		batch = batch[n:]
	}
}

// input handles a run of packets for sh.
//
// +checklocks:sh.mu
func (sh *shard) input(run []packet) {
	for _, p := range run {
		delete(sh.conns, p.id)
	}
}
