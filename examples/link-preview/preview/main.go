// Command preview answers GET /fn/preview?url=URL with the title of the
// page at URL. The first request for a URL fetches it with http.Get,
// which inside Gust goes through the host and reaches only the hosts the
// function is granted; the page is kept in the pages object bucket and
// the preview in the previews KV bucket, from which later requests are
// answered. DELETE forgets a URL.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	gust "github.com/gustfaas/gust/sdk/go"
)

// maxPage is how much of a page is read and kept.
const maxPage = 1 << 20

// Preview is what the function answers.
type Preview struct {
	URL     string    `json:"url"`
	Title   string    `json:"title"`
	Status  int       `json:"status"`
	Bytes   int64     `json:"bytes"`
	Page    string    `json:"page"` // the object holding the page
	Fetched time.Time `json:"fetched"`
	Cached  bool      `json:"cached"`
}

var (
	previews = gust.KV("previews")
	pages    = gust.Objects("pages")
	titleRE  = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
)

func init() { gust.HandleHTTP(http.HandlerFunc(serve)) }

func serve(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if u, err := url.Parse(target); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		fail(w, http.StatusBadRequest, "give the page as ?url=, an absolute http or https URL")
		return
	}
	key := keyOf(target)
	switch r.Method {
	case http.MethodGet:
		get(w, r, target, key)
	case http.MethodDelete:
		if err := previews.Delete(r.Context(), key); err != nil {
			fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		if err := pages.Delete(r.Context(), key+".html"); err != nil {
			fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		fail(w, http.StatusMethodNotAllowed, r.Method+" is not supported")
	}
}

func get(w http.ResponseWriter, r *http.Request, target, key string) {
	ctx := r.Context()
	if e, err := previews.Get(ctx, key); err == nil {
		var p Preview
		if json.Unmarshal(e.Value, &p) == nil {
			p.Cached = true
			reply(w, http.StatusOK, p)
			return
		}
	} else if !errors.Is(err, gust.ErrNotFound) {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := http.DefaultClient.Do(req)
	switch {
	case errors.Is(err, gust.ErrAccessDenied):
		fail(w, http.StatusForbidden, err.Error())
		return
	case err != nil:
		fail(w, http.StatusBadGateway, err.Error())
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		fail(w, http.StatusBadGateway, err.Error())
		return
	}
	info, err := pages.Put(ctx, key+".html", bytes.NewReader(body), resp.Header.Get("Content-Type"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	p := Preview{URL: target, Title: titleOf(body), Status: resp.StatusCode, Bytes: info.Size,
		Page: "pages/" + info.Name, Fetched: time.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(p)
	// Create only: two first requests racing store one preview.
	if _, err := previews.CompareAndSet(ctx, key, b, 0); err != nil && !errors.Is(err, gust.ErrConflict) {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	reply(w, http.StatusOK, p)
}

// keyOf names a URL's entries: the hex SHA-256 of the URL, short enough
// for a key and free of characters keys refuse.
func keyOf(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:16])
}

// titleOf returns a page's <title>, unescaped, with its white space
// collapsed.
func titleOf(page []byte) string {
	m := titleRE.FindSubmatch(page)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

func main() {}
