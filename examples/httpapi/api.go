package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Todo is one item of the list.
type Todo struct {
	ID        int       `json:"id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"createdAt"`
}

// store is an in-memory todo list.
type store struct {
	mu     sync.Mutex
	nextID int
	todos  map[int]Todo
}

// newServer returns the API's handler with an empty store.
func newServer() http.Handler {
	s := &store{nextID: 1, todos: make(map[int]Todo)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /todos", s.list)
	mux.HandleFunc("POST /todos", s.create)
	mux.HandleFunc("GET /todos/{id}", s.get)
	mux.HandleFunc("DELETE /todos/{id}", s.delete)
	return mux
}

func (s *store) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "todos",
		"endpoints": []string{
			"GET /todos", "POST /todos", "GET /todos/{id}", "DELETE /todos/{id}",
		},
	})
}

func (s *store) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	todos := make([]Todo, 0, len(s.todos))
	for _, t := range s.todos {
		todos = append(todos, t)
	}
	s.mu.Unlock()
	slices.SortFunc(todos, func(a, b Todo) int { return a.ID - b.ID })
	writeJSON(w, http.StatusOK, todos)
}

func (s *store) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON like {\"title\":\"...\"}")
		return
	}
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" {
		writeError(w, http.StatusBadRequest, "title is required")
		return
	}
	s.mu.Lock()
	t := Todo{ID: s.nextID, Title: in.Title, CreatedAt: time.Now().UTC()}
	s.todos[t.ID] = t
	s.nextID++
	s.mu.Unlock()
	w.Header().Set("Location", "/todos/"+strconv.Itoa(t.ID))
	writeJSON(w, http.StatusCreated, t)
}

func (s *store) get(w http.ResponseWriter, r *http.Request) {
	id, ok := todoID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	t, found := s.todos[id]
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "no todo with id "+strconv.Itoa(id))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *store) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := todoID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	_, found := s.todos[id]
	delete(s.todos, id)
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "no todo with id "+strconv.Itoa(id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func todoID(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return 0, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
