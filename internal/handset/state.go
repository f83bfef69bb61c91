package handset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"sync"
)

// A card's live state is kept beside its issued image: <ICCID>.card stays
// as the factory wrote it, and <ICCID>.state holds two slots that the
// phone writes alternately, each with a sequence number. Writing a slot in
// place through a file the phone keeps open costs one pwrite, where
// replacing the image (create, write, rename) cost three metadata
// operations per command — the difference between the disk and the SIM
// being the limit of the simulated network. A slot that a crash tore is
// recognised by its checksum (and the image's own authentication), and
// the other slot, one command older, is used.
const (
	stateExt     = ".state"
	slotSize     = 16 << 10
	slotHeader   = 16 // sequence (8), length (4), CRC-32 of the rest (4)
	maxImageSize = slotSize - slotHeader
)

// stateFile is one card's slot file.
type stateFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	seq  uint64
}

func statePath(cardPath string) string {
	return strings.TrimSuffix(cardPath, cardExt) + stateExt
}

// write stores img in the slot after the current one.
func (s *stateFile) write(img []byte, durable bool) error {
	if len(img) > maxImageSize {
		return fmt.Errorf("card image of %d bytes exceeds a slot", len(img))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		s.f = f
	}
	seq := s.seq + 1
	buf := make([]byte, slotHeader+len(img))
	binary.BigEndian.PutUint64(buf[0:], seq)
	binary.BigEndian.PutUint32(buf[8:], uint32(len(img)))
	copy(buf[slotHeader:], img)
	binary.BigEndian.PutUint32(buf[12:], slotCRC(buf))
	if _, err := s.f.WriteAt(buf, int64(seq%2)*slotSize); err != nil {
		return err
	}
	if durable {
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	s.seq = seq
	return nil
}

// close releases the file handle.
func (s *stateFile) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// slotCRC covers the sequence number, the length and the image.
func slotCRC(slot []byte) uint32 {
	h := crc32.NewIEEE()
	h.Write(slot[:12])
	h.Write(slot[slotHeader:])
	return h.Sum32()
}

// stateCandidates returns the intact slots of a state file, newest first,
// and the highest sequence number seen. A missing file has none.
func stateCandidates(path string) (imgs [][]byte, seq uint64, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	type slot struct {
		seq uint64
		img []byte
	}
	var slots []slot
	for i := 0; i < 2; i++ {
		off := i * slotSize
		if len(b) < off+slotHeader {
			break
		}
		h := b[off:]
		n := int(binary.BigEndian.Uint32(h[8:]))
		if n > maxImageSize || len(h) < slotHeader+n {
			continue
		}
		sl := h[:slotHeader+n]
		if binary.BigEndian.Uint32(h[12:]) != slotCRC(sl) {
			continue
		}
		slots = append(slots, slot{binary.BigEndian.Uint64(h), sl[slotHeader:]})
		seq = max(seq, binary.BigEndian.Uint64(h))
	}
	if len(slots) == 2 && slots[1].seq > slots[0].seq {
		slots[0], slots[1] = slots[1], slots[0]
	}
	for _, s := range slots {
		imgs = append(imgs, s.img)
	}
	return imgs, seq, nil
}

// readImages returns the images to try for a card, newest first: the
// intact state slots, then the issued image.
func readImages(cardPath string) (imgs [][]byte, seq uint64, err error) {
	imgs, seq, err = stateCandidates(statePath(cardPath))
	if err != nil {
		return nil, 0, fmt.Errorf("read card state: %w", err)
	}
	issued, err := os.ReadFile(cardPath)
	if err != nil {
		return nil, 0, fmt.Errorf("read card image: %w", err)
	}
	return append(imgs, issued), seq, nil
}
