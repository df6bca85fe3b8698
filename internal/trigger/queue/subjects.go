package queue

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSubjectLen bounds a subject.
const MaxSubjectLen = 512

// Stream-name prefixes of Gust's own streams.
const (
	gustStreamPrefix  = "GUST_"
	gustQueuePrefix   = "GUST_QUEUE_"
	kvStreamPrefix    = "KV_"
	objectsStreamPrfx = "OBJ_"
)

// ValidateSubject checks a subject a message can be published on: tokens
// separated by '.', none empty, no wildcard ('*', '>'), no white space or
// control character. The error names the problem.
func ValidateSubject(s string) error {
	if err := checkTokens(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "*>") {
		return fmt.Errorf("subject %q has a wildcard ('*' or '>'): a message is published on one literal subject", s)
	}
	return nil
}

// ValidatePattern checks a subject a subscription or a stream may name:
// as ValidateSubject, but a token may be the wildcard '*' (any one token),
// and the last may be '>' (one or more tokens).
func ValidatePattern(s string) error {
	if err := checkTokens(s); err != nil {
		return err
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "*":
		case t == ">":
			if i != len(tokens)-1 {
				return fmt.Errorf("subject %q has '>' before its last token: '>' matches the rest of a subject, so it comes last", s)
			}
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q has a token %q mixing a wildcard with other characters: '*' and '>' stand alone as a token", s, t)
		}
	}
	return nil
}

// checkTokens checks what literal subjects and patterns share.
func checkTokens(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("the subject is empty")
	case len(s) > MaxSubjectLen:
		return fmt.Errorf("subject %.40q... is %d bytes long: at most %d", s, len(s), MaxSubjectLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("subject %q is not valid UTF-8", s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) {
			return fmt.Errorf("subject %q has white space: subjects are tokens separated by '.' without spaces", s)
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("subject %q has a control character", s)
		}
	}
	if strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return fmt.Errorf("subject %q has an empty token: tokens are separated by single dots, with none at either end", s)
	}
	return nil
}

// systemSubject refuses NATS's own subjects.
func systemSubject(s string) error {
	if strings.HasPrefix(s, "$") {
		return fmt.Errorf("subject %q starts with '$': those are NATS's own (JetStream API, KV and object stores, system)", s)
	}
	if s == "_INBOX" || strings.HasPrefix(s, "_INBOX.") {
		return fmt.Errorf("subject %q is under _INBOX: those carry replies", s)
	}
	return nil
}

// gustSubject refuses the subjects Gust keeps its state on (gust.*),
// except, when queues is set, a Gust queue's gust.queue.NAME.
func gustSubject(s string, queues bool) error {
	tokens := strings.Split(s, ".")
	if tokens[0] != "gust" {
		return nil
	}
	if queues && len(tokens) >= 3 && tokens[1] == "queue" {
		return nil
	}
	if queues {
		return fmt.Errorf("subject %q is under gust., where Gust keeps its own state (only a Gust queue's gust.queue.NAME is open)", s)
	}
	return fmt.Errorf("subject %q is under gust., where Gust keeps its own state", s)
}

// validateName checks a stream or consumer name (field names it).
func validateName(field, name string) error {
	switch {
	case name == "":
		return invalid(field, "the %s name is empty", field)
	case len(name) > MaxNameLen:
		return invalid(field, "%s name %.40q... is %d bytes long: at most %d", field, name, len(name), MaxNameLen)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(".*>/\\", r) || r == utf8.RuneError {
			return invalid(field, "%s name %q has %q: names have no spaces, '.', '*', '>', '/' or '\\'", field, name, r)
		}
	}
	return nil
}

// readableStream refuses, on the node's NATS, the streams of Gust's own
// state (GUST_*, KV_*, OBJ_*), but not Gust's queues (GUST_QUEUE_*).
func readableStream(name string) error {
	u := strings.ToUpper(name)
	switch {
	case strings.HasPrefix(u, gustQueuePrefix):
		return nil
	case strings.HasPrefix(u, gustStreamPrefix):
		return fmt.Errorf("stream %q is Gust's own (GUST_*): a queue trigger reads a Gust queue (GUST_QUEUE_*) or a stream made with `gust stream create`", name)
	case strings.HasPrefix(u, kvStreamPrefix):
		return fmt.Errorf("stream %q holds a KV bucket: use a kv trigger for its changes", name)
	case strings.HasPrefix(u, objectsStreamPrfx):
		return fmt.Errorf("stream %q holds an object bucket: use an objects trigger for its changes", name)
	}
	return nil
}

// overlap reports whether two subject patterns match a subject in
// common.
func overlap(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i < len(ta) && ta[i] == ">":
			return i < len(tb) // '>' needs at least one token
		case i < len(tb) && tb[i] == ">":
			return i < len(ta)
		case i == len(ta) || i == len(tb):
			return len(ta) == len(tb)
		case ta[i] != "*" && tb[i] != "*" && ta[i] != tb[i]:
			return false
		}
	}
}
