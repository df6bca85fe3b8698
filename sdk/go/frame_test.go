package gust

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeFrame(t *testing.T) {
	valid := appendFrame(nil, frame{
		deadlineMS: 1700000000123,
		requestID:  []byte("req-1"),
		function:   []byte("hello"),
		payload:    []byte(`{"name":"Ada"}`),
	})
	tests := []struct {
		name    string
		in      []byte
		want    frame
		wantErr string
	}{
		{"valid", valid, frame{1700000000123, []byte("req-1"), []byte("hello"), []byte(`{"name":"Ada"}`)}, ""},
		{"empty fields", appendFrame(nil, frame{}), frame{requestID: []byte{}, function: []byte{}, payload: []byte{}}, ""},
		{"empty", nil, frame{}, "truncated"},
		{"short header", valid[:11], frame{}, "truncated"},
		{"truncated payload", valid[:len(valid)-1], frame{}, "truncated"},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), frame{}, "unexpected bytes"},
		{"version", append([]byte{2}, valid[1:]...), frame{}, "version 2"},
		{"reserved", append([]byte{1, 0, 1}, valid[3:]...), frame{}, "reserved"},
		{"huge length", append(append([]byte(nil), valid[:12]...), 0xff, 0xff, 0xff, 0xff), frame{}, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame(tt.in)
			if tt.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
					t.Fatalf("decodeFrame() error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeFrame() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(frame{})); diff != "" {
				t.Errorf("decodeFrame() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeFrame: the decoder never panics, and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, frame{deadlineMS: 1, requestID: []byte("r"), function: []byte("f"), payload: []byte("{}")}))
	f.Add(appendFrame(nil, frame{}))
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		if again := appendFrame(nil, fr); !bytes.Equal(again, b) {
			t.Errorf("decodeFrame(%x) re-encodes to %x", b, again)
		}
	})
}
