package creds

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/google/go-cmp/cmp"
)

var (
	idPattern     = regexp.MustCompile(`^GK[A-Z0-9]{18}$`)
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := Generate()
		if err != nil {
			t.Fatalf("Generate() = %v", err)
		}
		if !idPattern.MatchString(k.AccessKeyID) {
			t.Errorf("Generate() AccessKeyID = %q, want %v", k.AccessKeyID, idPattern)
		}
		if !secretPattern.MatchString(k.SecretAccessKey) {
			t.Errorf("Generate() SecretAccessKey = %q, want %v", k.SecretAccessKey, secretPattern)
		}
		if seen[k.AccessKeyID] || seen[k.SecretAccessKey] {
			t.Fatalf("Generate() repeated a value: %+v", k)
		}
		seen[k.AccessKeyID], seen[k.SecretAccessKey] = true, true
	}
}

func TestWriteFile(t *testing.T) {
	k := Key{AccessKeyID: "GKNEWNEWNEWNEWNEWNEW", SecretAccessKey: "new/secret+new/secret+new/secret+new/sec"}
	tests := []struct {
		name    string
		old     string // "" means no file
		profile string
		want    string
	}{
		{name: "new file", profile: "default",
			want: "[default]\naws_access_key_id = GKNEWNEWNEWNEWNEWNEW\naws_secret_access_key = new/secret+new/secret+new/secret+new/sec\n"},
		{name: "append profile",
			old:     "# mine\n[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = worksecret\nregion = eu-west-1\n",
			profile: "gust",
			want: "# mine\n[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = worksecret\nregion = eu-west-1\n\n" +
				"[gust]\naws_access_key_id = GKNEWNEWNEWNEWNEWNEW\naws_secret_access_key = new/secret+new/secret+new/secret+new/sec\n"},
		{name: "replace profile keeping others",
			old: "[default]\naws_access_key_id=OLD\n; keep me\naws_secret_access_key = OLDSECRET\naws_session_token = TOKEN\nregion = us-east-1\n" +
				"[other]\naws_access_key_id = OTHER\naws_secret_access_key = OTHERSECRET\n",
			profile: "default",
			want: "[default]\naws_access_key_id = GKNEWNEWNEWNEWNEWNEW\naws_secret_access_key = new/secret+new/secret+new/secret+new/sec\n" +
				"; keep me\nregion = us-east-1\n" +
				"[other]\naws_access_key_id = OTHER\naws_secret_access_key = OTHERSECRET\n"},
		{name: "duplicate sections", old: "[default]\naws_access_key_id = A\n[x]\n[default]\naws_secret_access_key = B\n", profile: "default",
			want: "[default]\naws_access_key_id = GKNEWNEWNEWNEWNEWNEW\naws_secret_access_key = new/secret+new/secret+new/secret+new/sec\n[x]\n[default]\n"},
		{name: "crlf and no final newline", old: "[a]\r\nx = 1", profile: "b",
			want: "[a]\nx = 1\n\n[b]\naws_access_key_id = GKNEWNEWNEWNEWNEWNEW\naws_secret_access_key = new/secret+new/secret+new/secret+new/sec\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "credentials")
			if tt.old != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, tt.profile, k); err != nil {
				t.Fatalf("WriteFile() = %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("file after WriteFile (-want +got):\n%s", diff)
			}
			if runtime.GOOS != "windows" {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("file mode = %v, want 0600", fi.Mode().Perm())
				}
			}
			back, err := ReadFile(path, tt.profile)
			if err != nil || back != k {
				t.Errorf("ReadFile() = %+v, %v; want %+v", back, err, k)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want 1 (no temporary files left)", len(entries))
			}
		})
	}
}

func TestWriteFileRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	for _, tt := range []struct {
		name    string
		profile string
		k       Key
	}{
		{"empty id", "default", Key{SecretAccessKey: "s"}},
		{"empty secret", "default", Key{AccessKeyID: "a"}},
		{"newline", "default", Key{AccessKeyID: "a\n[x]", SecretAccessKey: "s"}},
		{"comment", "default", Key{AccessKeyID: "a", SecretAccessKey: "s #x"}},
		{"bad profile", "a]b", Key{AccessKeyID: "a", SecretAccessKey: "s"}},
		{"empty profile", "", Key{AccessKeyID: "a", SecretAccessKey: "s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFile(path, tt.profile, tt.k); err == nil {
				t.Errorf("WriteFile(%q, %+v) = nil, want an error", tt.profile, tt.k)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		profile string
		want    Key
		wantErr error
	}{
		{name: "simple", data: "[default]\naws_access_key_id = A\naws_secret_access_key = S\n", profile: "default", want: Key{"A", "S"}},
		{name: "comments and spacing",
			data: "# top\n; also\n  [ default ]  # trailing\n\tAWS_ACCESS_KEY_ID=A ; comment\n aws_secret_access_key\t=  S/+x  \n", profile: "default",
			want: Key{"A", "S/+x"}},
		{name: "other profile", data: "[default]\naws_access_key_id = A\naws_secret_access_key = S\n[p]\naws_access_key_id = B\naws_secret_access_key = T\n",
			profile: "p", want: Key{"B", "T"}},
		{name: "hash inside value", data: "[default]\naws_access_key_id = A#B\naws_secret_access_key = S\n", profile: "default", want: Key{"A#B", "S"}},
		{name: "crlf", data: "[default]\r\naws_access_key_id = A\r\naws_secret_access_key = S\r\n", profile: "default", want: Key{"A", "S"}},
		{name: "missing profile", data: "[x]\naws_access_key_id = A\naws_secret_access_key = S\n", profile: "default", wantErr: ErrNoCredentials},
		{name: "missing secret", data: "[default]\naws_access_key_id = A\n", profile: "default", wantErr: ErrNoCredentials},
		{name: "empty", data: "", profile: "default", wantErr: ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.data), tt.profile)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("Parse(%q, %q) = %+v, %v; want %+v, %v", tt.data, tt.profile, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := WriteFile(filepath.Join(dataDir, FileName), DefaultProfile, Key{"DATAID", "DATASECRET"}); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared")
	if err := WriteFile(shared, "default", Key{"SHAREDDEF", "S1"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(shared, "gust", Key{"SHAREDGUST", "S2"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		dataDir     string
		want        Key
		wantErr     error
		wantMessage []string
	}{
		{name: "env vars win", env: map[string]string{EnvAccessKeyID: "ENVID", EnvSecretAccessKey: "ENVSECRET", EnvCredentialsFile: shared},
			dataDir: dataDir, want: Key{"ENVID", "ENVSECRET"}},
		{name: "only id", env: map[string]string{EnvAccessKeyID: "ENVID"}, dataDir: dataDir, wantMessage: []string{EnvSecretAccessKey}},
		{name: "only secret", env: map[string]string{EnvSecretAccessKey: "X"}, dataDir: dataDir, wantMessage: []string{EnvAccessKeyID}},
		{name: "shared file default", env: map[string]string{EnvCredentialsFile: shared}, dataDir: dataDir, want: Key{"SHAREDDEF", "S1"}},
		{name: "shared file profile", env: map[string]string{EnvCredentialsFile: shared, EnvProfile: "gust"}, dataDir: dataDir, want: Key{"SHAREDGUST", "S2"}},
		{name: "shared file missing profile", env: map[string]string{EnvCredentialsFile: shared, EnvProfile: "nope"}, dataDir: dataDir,
			wantErr: ErrNoCredentials, wantMessage: []string{EnvCredentialsFile, `"nope"`}},
		{name: "shared file missing", env: map[string]string{EnvCredentialsFile: filepath.Join(dir, "absent")}, dataDir: dataDir,
			wantErr: fs.ErrNotExist, wantMessage: []string{EnvCredentialsFile}},
		{name: "data dir", env: map[string]string{EnvProfile: "ignored"}, dataDir: dataDir, want: Key{"DATAID", "DATASECRET"}},
		{name: "nothing", dataDir: filepath.Join(dir, "empty"), wantErr: ErrNoCredentials,
			wantMessage: []string{EnvAccessKeyID, EnvCredentialsFile, filepath.Join(dir, "empty", FileName)}},
		{name: "no data dir", wantErr: ErrNoCredentials, wantMessage: []string{EnvAccessKeyID, EnvCredentialsFile, "data directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := FromEnvironment(getenv, tt.dataDir)
			if tt.wantErr == nil && tt.wantMessage == nil {
				if err != nil || got != tt.want {
					t.Fatalf("FromEnvironment() = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromEnvironment() = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("FromEnvironment() = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantMessage {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("FromEnvironment() = %q, want it to mention %q", err, s)
				}
			}
		})
	}
}

// TestSDKReadsWrittenFile checks that aws-sdk-go-v2 finds the key
// WriteFile wrote, in a file that also holds other profiles.
func TestSDKReadsWrittenFile(t *testing.T) {
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	if err := os.WriteFile(path, []byte("# existing\n[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = othersecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"default", "gust"} {
		t.Run(profile, func(t *testing.T) {
			k, err := Generate()
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(path, profile, k); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadDefaultConfig(context.Background(),
				config.WithSharedCredentialsFiles([]string{path}),
				config.WithSharedConfigFiles([]string{filepath.Join(dir, "no-config")}),
				config.WithSharedConfigProfile(profile),
				config.WithRegion("us-east-1"),
			)
			if err != nil {
				t.Fatalf("LoadDefaultConfig() = %v", err)
			}
			got, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatalf("Retrieve() = %v", err)
			}
			if got.AccessKeyID != k.AccessKeyID || got.SecretAccessKey != k.SecretAccessKey {
				t.Errorf("SDK read %q/%q, want %q/%q", got.AccessKeyID, got.SecretAccessKey, k.AccessKeyID, k.SecretAccessKey)
			}
		})
	}
	other, err := ReadFile(path, "other")
	if err != nil || other.AccessKeyID != "AKIAOTHER" {
		t.Errorf("ReadFile(other) = %+v, %v; want the untouched profile", other, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[default]\naws_access_key_id = A\naws_secret_access_key = S\n"), "default")
	f.Add([]byte("# c\n[ p ] ; x\nAWS_ACCESS_KEY_ID=A#B\n=\n[\n]\n"), "p")
	f.Add([]byte("\r\n\x00[default"), "default")
	f.Fuzz(func(t *testing.T, data []byte, profile string) {
		k, err := Parse(data, profile)
		if err != nil {
			return
		}
		if k.AccessKeyID == "" || k.SecretAccessKey == "" {
			t.Fatalf("Parse() = %+v with nil error", k)
		}
		// What Parse accepts, setProfile writes back and Parse reads again,
		// when the key and profile are writable at all.
		if k.validate() != nil || profile == "" || strings.ContainsAny(profile, "[]\r\n#;") || strings.TrimSpace(profile) != profile {
			return
		}
		k2 := Key{AccessKeyID: "GKFUZZ", SecretAccessKey: "fuzz/secret"}
		out := setProfile(data, profile, k2)
		if got, err := Parse(out, profile); err != nil || got != k2 {
			t.Fatalf("Parse(setProfile(%q)) = %+v, %v; want %+v", data, got, err, k2)
		}
	})
}
