package vpc

import "time"

// KeyPair is an account's SSH key pair: only the public half is kept (the
// private key of a created pair is handed out once and forgotten).
type KeyPair struct {
	ID      string `json:"id"` // key-…
	OwnerID string `json:"owner_id"`
	Name    string `json:"name"`
	Type    string `json:"type"` // rsa | ed25519
	// Fingerprint is what AWS shows: for a created RSA pair the SHA-1 of
	// the PKCS#8 private key, for an imported RSA key the MD5 of the DER
	// public key, for ed25519 the base64 SHA-256 of the SSH public key.
	Fingerprint string    `json:"fingerprint"`
	PublicKey   string    `json:"public_key"` // OpenSSH authorized_keys line
	CreateTime  time.Time `json:"create_time"`
	Tags        Tags      `json:"tags,omitempty"`
}

// KeyPair returns owner's key pair id, or InvalidKeyPair.NotFound.
func (s *State) KeyPair(owner, id string) (*KeyPair, error) {
	return owned(s.KeyPairs, id, owner, func(v *KeyPair) string { return v.OwnerID }, KindKeyPair)
}
