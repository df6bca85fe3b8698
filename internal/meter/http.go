package meter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Handler serves usage reports as JSON: GET ?since=RFC3339&function=NAME.
// since defaults to 24 hours ago.
func (m *Meter) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		since := time.Now().Add(-24 * time.Hour)
		if s := q.Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeErr(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("since %q is not an RFC 3339 time", s))
				return
			}
			since = t
		}
		fn := q.Get("function")
		if fn != "" && !nameRE.MatchString(fn) {
			writeErr(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %q is not a valid function name", fn))
			return
		}
		rep, err := m.Query(r.Context(), since, fn)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "ServiceException", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	})
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}
