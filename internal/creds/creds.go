// Package creds owns Gust's access keys on the client side: generating an
// admin key pair, and reading and writing it in the AWS shared-credentials
// file format, so that the gust CLI, the AWS CLI and AWS SDKs all find the
// same key.
//
// The file format is the INI dialect AWS tools read:
//
//	[default]
//	aws_access_key_id = GK...
//	aws_secret_access_key = ...
//
// Only what that format needs is supported: sections, key = value pairs,
// and whole-line or whitespace-preceded comments starting with '#' or ';'.
package creds

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Key is an access key pair.
type Key struct {
	AccessKeyID     string
	SecretAccessKey string
}

// AccessKeyPrefix starts every access key ID that Generate makes.
const AccessKeyPrefix = "GK"

// DefaultProfile is the profile used when none is named.
const DefaultProfile = "default"

// FileName is the name of the credentials file in a node's data directory.
const FileName = "credentials"

// Environment variables read by FromEnvironment.
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvCredentialsFile = "AWS_SHARED_CREDENTIALS_FILE"
	EnvProfile         = "AWS_PROFILE"
)

// Keys in a credentials file section.
const (
	iniAccessKeyID     = "aws_access_key_id"
	iniSecretAccessKey = "aws_secret_access_key"
	iniSessionToken    = "aws_session_token"
)

// ErrNoCredentials is wrapped by FromEnvironment when no source holds a
// key, and by ReadFile when the profile is absent or incomplete.
var ErrNoCredentials = errors.New("no credentials")

// Generate returns a new random key: a 20-character access key ID of
// AccessKeyPrefix and uppercase letters and digits, and a 40-character
// secret of base64 characters (A-Z a-z 0-9 + /), both from crypto/rand.
func Generate() (Key, error) {
	const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	id := make([]byte, 0, 20)
	id = append(id, AccessKeyPrefix...)
	var buf [64]byte
	for len(id) < cap(id) {
		if _, err := rand.Read(buf[:]); err != nil {
			return Key{}, fmt.Errorf("generate access key: %w", err)
		}
		for _, b := range buf {
			// 252 = 7*36: reject the top values so every symbol is equally likely.
			if b < 252 && len(id) < cap(id) {
				id = append(id, idAlphabet[b%36])
			}
		}
	}
	var secret [30]byte // 30 bytes encode to exactly 40 base64 characters
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, fmt.Errorf("generate secret key: %w", err)
	}
	return Key{AccessKeyID: string(id), SecretAccessKey: base64.StdEncoding.EncodeToString(secret[:])}, nil
}

// validate reports whether k can be written to a credentials file.
func (k Key) validate() error {
	for _, f := range []struct{ name, v string }{{iniAccessKeyID, k.AccessKeyID}, {iniSecretAccessKey, k.SecretAccessKey}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
		if strings.ContainsAny(f.v, " \t\r\n#;") {
			return fmt.Errorf("%s contains a character a credentials file cannot hold", f.name)
		}
	}
	return nil
}

// WriteFile stores k as profile in the credentials file at path, keeping
// the file's other profiles, comments and settings. Within profile, the
// access key and secret replace any previous ones and a stale
// aws_session_token is dropped. The file is written atomically (a temporary
// file renamed over it) with mode 0600; missing parent directories are
// created with mode 0700.
func WriteFile(path, profile string, k Key) error {
	if err := k.validate(); err != nil {
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	if profile == "" || strings.ContainsAny(profile, "[]\r\n") {
		return fmt.Errorf("write credentials %s: invalid profile name %q", path, profile)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write credentials: %w", err)
	}
	data := setProfile(old, profile, k)

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// setProfile returns the file old with profile's key set to k.
func setProfile(old []byte, profile string, k Key) []byte {
	keyLines := []string{
		iniAccessKeyID + " = " + k.AccessKeyID,
		iniSecretAccessKey + " = " + k.SecretAccessKey,
	}
	var out []string
	found, inProfile := false, false
	lines := strings.Split(strings.ReplaceAll(string(old), "\r\n", "\n"), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, line := range lines {
		if name, ok := sectionName(line); ok {
			inProfile = name == profile
			out = append(out, line)
			if inProfile && !found {
				found = true
				out = append(out, keyLines...)
			}
			continue
		}
		if inProfile {
			if key, _, ok := keyValue(line); ok {
				switch key {
				case iniAccessKeyID, iniSecretAccessKey, iniSessionToken:
					continue
				}
			}
		}
		out = append(out, line)
	}
	if !found {
		if len(out) > 0 && strings.TrimSpace(out[len(out)-1]) != "" {
			out = append(out, "")
		}
		out = append(out, "["+profile+"]")
		out = append(out, keyLines...)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// ReadFile returns the key stored as profile in the credentials file at
// path. A missing file is reported with an error wrapping fs.ErrNotExist; a
// missing or incomplete profile with one wrapping ErrNoCredentials.
func ReadFile(path, profile string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read credentials: %w", err)
	}
	k, err := Parse(data, profile)
	if err != nil {
		return Key{}, fmt.Errorf("read credentials %s: %w", path, err)
	}
	return k, nil
}

// Parse returns the key of profile in data, a credentials file's content.
// If the profile appears more than once, its sections are merged, later
// values winning.
func Parse(data []byte, profile string) (Key, error) {
	var k Key
	found, inProfile := false, false
	for line := range strings.SplitSeq(string(data), "\n") {
		if name, ok := sectionName(line); ok {
			inProfile = name == profile
			found = found || inProfile
			continue
		}
		if !inProfile {
			continue
		}
		key, value, ok := keyValue(line)
		if !ok {
			continue
		}
		switch key {
		case iniAccessKeyID:
			k.AccessKeyID = value
		case iniSecretAccessKey:
			k.SecretAccessKey = value
		}
	}
	switch {
	case !found:
		return Key{}, fmt.Errorf("profile %q: %w", profile, ErrNoCredentials)
	case k.AccessKeyID == "":
		return Key{}, fmt.Errorf("profile %q has no %s: %w", profile, iniAccessKeyID, ErrNoCredentials)
	case k.SecretAccessKey == "":
		return Key{}, fmt.Errorf("profile %q has no %s: %w", profile, iniSecretAccessKey, ErrNoCredentials)
	}
	return k, nil
}

// sectionName returns the name of the section a "[name]" line opens.
func sectionName(line string) (string, bool) {
	line = stripComment(line)
	if len(line) < 2 || line[0] != '[' || line[len(line)-1] != ']' {
		return "", false
	}
	return strings.TrimSpace(line[1 : len(line)-1]), true
}

// keyValue splits a "key = value" line; keys are case-insensitive and
// returned in lowercase.
func keyValue(line string) (key, value string, ok bool) {
	line = stripComment(line)
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", false
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if k == "" {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

// stripComment removes a comment (a '#' or ';' starting the line or
// preceded by whitespace) and surrounding whitespace.
func stripComment(line string) string {
	line = strings.TrimSpace(line)
	for i := 0; i < len(line); i++ {
		if c := line[i]; (c == '#' || c == ';') && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return strings.TrimSpace(line[:i])
		}
	}
	return line
}

// FromEnvironment finds the key the gust CLI uses, trying in order:
//
//  1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;
//  2. the file named by AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE
//     or "default";
//  3. dataDir/credentials, profile "default" (the file `gust up` writes).
//
// A source that is configured but unusable (only one of the two variables
// set; AWS_SHARED_CREDENTIALS_FILE naming a file without the profile) is an
// error rather than a reason to try the next. When nothing is found the
// error wraps ErrNoCredentials and names every source tried.
func FromEnvironment(getenv func(string) string, dataDir string) (Key, error) {
	id, secret := getenv(EnvAccessKeyID), getenv(EnvSecretAccessKey)
	switch {
	case id != "" && secret != "":
		return Key{AccessKeyID: id, SecretAccessKey: secret}, nil
	case id != "":
		return Key{}, fmt.Errorf("%s is set but %s is not", EnvAccessKeyID, EnvSecretAccessKey)
	case secret != "":
		return Key{}, fmt.Errorf("%s is set but %s is not", EnvSecretAccessKey, EnvAccessKeyID)
	}
	if file := getenv(EnvCredentialsFile); file != "" {
		profile := getenv(EnvProfile)
		if profile == "" {
			profile = DefaultProfile
		}
		k, err := ReadFile(file, profile)
		if err != nil {
			return Key{}, fmt.Errorf("%s: %w", EnvCredentialsFile, err)
		}
		return k, nil
	}
	tried := fmt.Sprintf("%s/%s not set, %s not set", EnvAccessKeyID, EnvSecretAccessKey, EnvCredentialsFile)
	if dataDir == "" {
		return Key{}, fmt.Errorf("%w: %s, no data directory", ErrNoCredentials, tried)
	}
	path := filepath.Join(dataDir, FileName)
	k, err := ReadFile(path, DefaultProfile)
	if errors.Is(err, fs.ErrNotExist) {
		return Key{}, fmt.Errorf("%w: %s, %s does not exist (start a node with `gust up` or pass --data)", ErrNoCredentials, tried, path)
	}
	if err != nil {
		return Key{}, err
	}
	return k, nil
}
