package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
)

// Signer encodes and signs frames with one key, reusing its HMAC state:
// the sender's per-frame work allocates nothing. A Signer is not safe for
// concurrent use.
type Signer struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewSigner returns a Signer for key, which must not be empty.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) == 0 {
		return nil, errors.New("heartbeat: signing frames: empty key")
	}
	return &Signer{mac: hmac.New(sha256.New, key)}, nil
}

// AppendSigned appends f, encoded and signed, to dst, as Frame.AppendSigned
// does with the Signer's key.
func (s *Signer) AppendSigned(dst []byte, f *Frame) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = f.appendBody(dst)
	s.mac.Reset()
	s.mac.Write(dst[start:])
	return append(dst, s.mac.Sum(s.sum[:0])[:TagSize]...), nil
}
