package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzURLEvent: any request maps to an event that encodes as JSON and
// carries the body back exactly.
func FuzzURLEvent(f *testing.F) {
	f.Add("GET", "/a/b", "x=1&x=2", "text/plain", "cookie-a=1; b=2", []byte("hello"))
	f.Add("POST", "/", "", "application/octet-stream", "", []byte{0xff, 0, 1})
	f.Add("PUT", "/%20x", "a=%zz", "", "", []byte("\xc3\x28"))
	f.Add("DELETE", "/é", "q", "application/json; charset=utf-8", ";;", []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, method, path, query, ctype, cookie string, body []byte) {
		r := httptest.NewRequest("GET", "/", bytes.NewReader(body))
		r.Method = method
		r.URL.RawQuery = query
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		ev := BuildURLEvent(r, path, "rid", "000000000000", body, time.Unix(0, 0))
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("event does not encode: %v", err)
		}
		var back URLEvent
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("event does not decode: %v", err)
		}
		got := []byte(back.Body)
		if back.IsBase64Encoded {
			if got, err = base64.StdEncoding.DecodeString(back.Body); err != nil {
				t.Fatalf("base64 body does not decode: %v", err)
			}
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("body %q came back as %q (base64 %v)", body, got, back.IsBase64Encoded)
		}
		for _, c := range back.Cookies {
			if strings.Contains(c, ";") {
				t.Fatalf("cookie %q was not split", c)
			}
		}
	})
}

// FuzzURLResponse: any function result maps to a valid HTTP response or a
// clear error, never a panic.
func FuzzURLResponse(f *testing.F) {
	f.Add([]byte(`{"statusCode":201,"headers":{"a":"b"},"cookies":["c=d"],"body":"hi"}`))
	f.Add([]byte(`{"statusCode":200,"body":"aGk=","isBase64Encoded":true}`))
	f.Add([]byte(`{"statusCode":99}`))
	f.Add([]byte(`{"statusCode":"x"}`))
	f.Add([]byte(`"just a string"`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if !json.Valid(payload) {
			return // the runtime only hands on valid JSON... or raw output
		}
		w := httptest.NewRecorder()
		err := WriteURLResponse(w, payload)
		if err != nil {
			return
		}
		if w.Code < 100 || w.Code > 599 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Header().Get("Content-Type") == "" {
			t.Fatalf("no content type for %s", payload)
		}
		_ = http.StatusText(w.Code)
	})
}
