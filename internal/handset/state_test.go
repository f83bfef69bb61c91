package handset

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStateSlots checks that the newest intact slot wins, that a torn slot
// falls back to the other one, and that the issued image comes last.
func TestStateSlots(t *testing.T) {
	dir := t.TempDir()
	card := filepath.Join(dir, "8999901000000000013"+cardExt)
	if err := os.WriteFile(card, []byte("issued"), 0o600); err != nil {
		t.Fatal(err)
	}
	imgs, seq, err := readImages(card)
	if err != nil || seq != 0 || len(imgs) != 1 || string(imgs[0]) != "issued" {
		t.Fatalf("readImages without state = %q, %d, %v", imgs, seq, err)
	}
	s := &stateFile{path: statePath(card)}
	defer s.close()
	for _, img := range []string{"one", "two", "three"} {
		if err := s.write([]byte(img), false); err != nil {
			t.Fatal(err)
		}
	}
	imgs, seq, err = readImages(card)
	want := []string{"three", "two", "issued"}
	if err != nil || seq != 3 || len(imgs) != 3 {
		t.Fatalf("readImages = %q, %d, %v; want %q, 3", imgs, seq, err, want)
	}
	for i := range want {
		if string(imgs[i]) != want[i] {
			t.Errorf("readImages[%d] = %q, want %q", i, imgs[i], want[i])
		}
	}
	// Tear the newest slot (sequence 3 lives in slot 1).
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xFF}, slotSize+slotHeader)
	f.Close()
	imgs, _, _ = readImages(card)
	if len(imgs) != 2 || string(imgs[0]) != "two" {
		t.Errorf("readImages after a torn slot = %q, want two, issued", imgs)
	}
	// A reopened state file continues the sequence.
	s2 := &stateFile{path: s.path, seq: 3}
	defer s2.close()
	if err := s2.write([]byte("four"), true); err != nil {
		t.Fatal(err)
	}
	imgs, seq, _ = readImages(card)
	if seq != 4 || string(imgs[0]) != "four" {
		t.Errorf("after a fourth write: seq %d, newest %q", seq, imgs[0])
	}
	if err := s2.write(bytes.Repeat([]byte{1}, maxImageSize+1), false); err == nil {
		t.Error("an image larger than a slot was written")
	}
}
