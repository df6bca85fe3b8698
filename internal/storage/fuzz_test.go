package storage

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// natsKeyRE is the key syntax NATS KV accepts.
var natsKeyRE = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// subjectMatches reports whether subject matches a filter whose only
// wildcard is a trailing '>'.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range ft {
		if t == ">" {
			return len(st) > i
		}
		if i >= len(st) || st[i] != t {
			return false
		}
	}
	return len(ft) == len(st)
}

// FuzzKeys: every key ValidateKey accepts is a valid NATS KV key and
// subject, every prefix of it is a valid prefix, and the consumer filter
// of that prefix matches the key's subject.
func FuzzKeys(f *testing.F) {
	for _, s := range []string{"a", "a.b", "a.b.c", "x/y=z", "a..b", ".a", "a.", "é", "a b", "a>", "a*"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, key string, cut int) {
		if ValidateKey(key) != nil {
			return
		}
		if !natsKeyRE.MatchString(key) || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
			t.Fatalf("ValidateKey accepted %q, which NATS refuses", key)
		}
		subject := "$KV." + kvPrefix + "b." + key
		for _, tok := range strings.Split(subject, ".") {
			if tok == "" {
				t.Fatalf("key %q makes a subject with an empty token", key)
			}
		}
		if cut < 0 {
			cut = -cut
		}
		prefix := key[:cut%(len(key)+1)]
		if err := validatePrefix(prefix); err != nil {
			t.Fatalf("validatePrefix(%q), a prefix of the valid key %q = %v", prefix, key, err)
		}
		if filter := kvFilter("b", prefix); !subjectMatches(filter, subject) {
			t.Fatalf("filter %q of prefix %q misses key %q", filter, prefix, key)
		}
	})
}

// FuzzS3Key: S3 event keys decode back to the name.
func FuzzS3Key(f *testing.F) {
	for _, s := range []string{"a b", "dir/file+1.txt", "ü%2F", "a&b=c?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateObjectName(name) != nil {
			return
		}
		got, err := url.QueryUnescape(s3Key(name))
		if err != nil || got != name {
			t.Fatalf("s3Key(%q) = %q, decodes to %q, %v", name, s3Key(name), got, err)
		}
	})
}
