package ec2

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"golang.org/x/crypto/ssh"
)

func init() {
	register("CreateKeyPair", createKeyPair)
	register("ImportKeyPair", importKeyPair)
	register("DescribeKeyPairs", describeKeyPairs)
	register("DeleteKeyPair", deleteKeyPair)
}

// keyPairByName returns owner's key pair called name, or nil.
func keyPairByName(st *vpc.State, owner, name string) *vpc.KeyPair {
	for _, k := range st.KeyPairs {
		if k.OwnerID == owner && k.Name == name {
			return k
		}
	}
	return nil
}

func keyPairNotFound(name string) error {
	return &vpc.Error{Code: vpc.KindKeyPair.NotFound, Message: fmt.Sprintf("The key pair '%s' does not exist", name)}
}

// keyName checks a new key pair's name as AWS does: 1 to 255 ASCII
// characters.
func keyName(c *call) (string, error) {
	name, err := c.p.required("KeyName")
	if err != nil {
		return "", err
	}
	if len(name) > 255 {
		return "", invalidValue("KeyName", name)
	}
	for _, r := range name {
		if r < 0x20 || r > 0x7e {
			return "", invalidValue("KeyName", name)
		}
	}
	return name, nil
}

// colonHex is AWS's hex fingerprint form, "1f:51:ae:…".
func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// ed25519Fingerprint is AWS's fingerprint of an ed25519 key: the base64
// SHA-256 of the SSH wire form, padding kept (ssh-keygen -l drops it).
func ed25519Fingerprint(pub ssh.PublicKey) string {
	h := sha256.Sum256(pub.Marshal())
	return base64.StdEncoding.EncodeToString(h[:])
}

func createKeyPair(c *call) (*node, error) {
	name, err := keyName(c)
	if err != nil {
		return nil, err
	}
	typ := c.p.str("KeyType")
	if typ == "" {
		typ = "rsa"
	}
	if typ != "rsa" && typ != "ed25519" {
		return nil, invalidValue("KeyType", typ)
	}
	switch f := c.p.str("KeyFormat"); f {
	case "", "pem":
	case "ppk":
		// PuTTY's format is a client-side conversion; a pem key converts.
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "KeyFormat ppk is not offered; ask for pem and convert it with puttygen."}
	default:
		return nil, invalidValue("KeyFormat", f)
	}
	tags, err := c.p.tagSpecs("key-pair")
	if err != nil {
		return nil, err
	}
	var material, fingerprint string
	var pub ssh.PublicKey
	if typ == "rsa" {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate rsa key: %w", err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode rsa key: %w", err)
		}
		sum := sha1.Sum(pkcs8)
		fingerprint = colonHex(sum[:])
		material = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
		if pub, err = ssh.NewPublicKey(&k.PublicKey); err != nil {
			return nil, fmt.Errorf("rsa public key: %w", err)
		}
	} else {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		block, err := ssh.MarshalPrivateKey(sk, "")
		if err != nil {
			return nil, fmt.Errorf("encode ed25519 key: %w", err)
		}
		material = string(pem.EncodeToMemory(block))
		if pub, err = ssh.NewPublicKey(pk); err != nil {
			return nil, fmt.Errorf("ed25519 public key: %w", err)
		}
		fingerprint = ed25519Fingerprint(pub)
	}
	kp, err := c.putKeyPair(name, typ, fingerprint, pub, tags)
	if err != nil {
		return nil, err
	}
	res := newNode("").s("keyName", kp.Name).s("keyFingerprint", kp.Fingerprint).s("keyMaterial", material).s("keyPairId", kp.ID)
	res.tagSet(kp.Tags)
	return res, nil
}

// putKeyPair stores a new key pair, refusing a name the account has.
func (c *call) putKeyPair(name, typ, fingerprint string, pub ssh.PublicKey, tags vpc.Tags) (*vpc.KeyPair, error) {
	kp := &vpc.KeyPair{ID: newID(vpc.KindKeyPair), OwnerID: c.acct, Name: name, Type: typ, Fingerprint: fingerprint,
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + name, CreateTime: c.s.now().UTC().Truncate(time.Millisecond), Tags: tags}
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if keyPairByName(st, c.acct, name) != nil {
			return &vpc.Error{Code: vpc.CodeInvalidKeyPairDuplicate, Message: "The keypair already exists"}
		}
		return tx.Put(kp.ID, kp)
	})
	if err != nil {
		return nil, err
	}
	return kp, nil
}

func importKeyPair(c *call) (*node, error) {
	name, err := keyName(c)
	if err != nil {
		return nil, err
	}
	raw, err := c.p.required("PublicKeyMaterial")
	if err != nil {
		return nil, err
	}
	tags, err := c.p.tagSpecs("key-pair")
	if err != nil {
		return nil, err
	}
	// The SDKs and the CLI send the material base64-encoded (a blob); a
	// plain authorized_keys line is taken as well.
	material := []byte(raw)
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil {
		material = b
	}
	bad := &vpc.Error{Code: vpc.CodeInvalidKeyFormat, Message: "Key is not in valid OpenSSH public key format"}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(material)
	if err != nil {
		return nil, bad
	}
	var typ, fingerprint string
	switch pub.Type() {
	case ssh.KeyAlgoRSA:
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return nil, bad
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || (rk.N.BitLen() != 1024 && rk.N.BitLen() != 2048 && rk.N.BitLen() != 4096) {
			return nil, &vpc.Error{Code: vpc.CodeInvalidKeyFormat, Message: "RSA keys of 1024, 2048 or 4096 bits are accepted."}
		}
		der, err := x509.MarshalPKIXPublicKey(rk)
		if err != nil {
			return nil, bad
		}
		sum := md5.Sum(der)
		typ, fingerprint = "rsa", colonHex(sum[:])
	case ssh.KeyAlgoED25519:
		typ, fingerprint = "ed25519", ed25519Fingerprint(pub)
	default:
		return nil, &vpc.Error{Code: vpc.CodeInvalidKeyFormat, Message: fmt.Sprintf("Key type %s is not supported: RSA and ED25519 keys are.", pub.Type())}
	}
	kp, err := c.putKeyPair(name, typ, fingerprint, pub, tags)
	if err != nil {
		return nil, err
	}
	res := newNode("").s("keyFingerprint", kp.Fingerprint).s("keyName", kp.Name).s("keyPairId", kp.ID)
	res.tagSet(kp.Tags)
	return res, nil
}

var keyPairResource = resource[vpc.KeyPair]{
	kind: vpc.KindKeyPair, idParam: "KeyPairId",
	id:    func(k *vpc.KeyPair) string { return k.ID },
	owner: func(k *vpc.KeyPair) string { return k.OwnerID },
	fields: func(k *vpc.KeyPair) fields {
		return fields{"key-pair-id": {k.ID}, "key-name": {k.Name}, "fingerprint": {k.Fingerprint}, "key-type": {k.Type}}
	},
	tags: func(k *vpc.KeyPair) vpc.Tags { return k.Tags },
}

func describeKeyPairs(c *call) (*node, error) {
	withPub, err := c.p.boolean("IncludePublicKey", false)
	if err != nil {
		return nil, err
	}
	res := newNode("")
	err = c.read(func(st *vpc.State) error {
		ks, _, err := describe(c, st.KeyPairs, keyPairResource)
		if err != nil {
			return err
		}
		if names := c.p.list("KeyName"); len(names) > 0 {
			var keep []*vpc.KeyPair
			for _, n := range names {
				k := keyPairByName(st, c.acct, n)
				if k == nil {
					return keyPairNotFound(n)
				}
				for _, x := range ks {
					if x == k {
						keep = append(keep, k)
					}
				}
			}
			ks = keep
		}
		set := res.set("keySet")
		for _, k := range ks {
			it := set.item().s("keyPairId", k.ID).s("keyType", k.Type).s("keyName", k.Name).s("keyFingerprint", k.Fingerprint)
			it.s("createTime", k.CreateTime.Format("2006-01-02T15:04:05.000Z"))
			if withPub {
				it.s("publicKey", k.PublicKey)
			}
			it.tagSet(k.Tags)
		}
		return nil
	})
	return res, err
}

// deleteKeyPair deletes by KeyName or KeyPairId. As on AWS, a name that
// names nothing is not an error; an id is checked.
func deleteKeyPair(c *call) (*node, error) {
	name, id := c.p.str("KeyName"), c.p.str("KeyPairId")
	if name == "" && id == "" {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter KeyName or KeyPairId"}
	}
	if id != "" {
		if err := vpc.ParseID(vpc.KindKeyPair, id); err != nil {
			return nil, err
		}
	}
	gone := ""
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		var k *vpc.KeyPair
		if id != "" {
			var err error
			if k, err = st.KeyPair(c.acct, id); err != nil {
				return err
			}
			if name != "" && k.Name != name {
				return keyPairNotFound(name)
			}
		} else if k = keyPairByName(st, c.acct, name); k == nil {
			return nil
		}
		gone = k.ID
		return tx.Delete("key_pairs", k.ID)
	})
	if err != nil {
		return nil, err
	}
	return returnTrue().opt("keyPairId", gone), nil
}
