package webapp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed static
var staticFiles embed.FS

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error   string `json:"error"`   // stable code, e.g. "store_unavailable"
	Message string `json:"message"` // for people
	Node    string `json:"node,omitempty"`
	Version string `json:"version,omitempty"`
}

type whoamiBody struct {
	Node     string `json:"node"`
	Version  string `json:"version"`
	Draining bool   `json:"draining"`
}

type sessionBody struct {
	Name    string `json:"name"`
	SavedBy string `json:"saved_by,omitempty"`
	SavedAt string `json:"saved_at,omitempty"` // RFC 3339
	Node    string `json:"node"`
	Version string `json:"version"`
}

type healthBody struct {
	Status  string `json:"status"` // "ok", "draining" or "redis_unavailable"
	Node    string `json:"node"`
	Version string `json:"version"`
	Error   string `json:"error,omitempty"`
}

type drainBody struct {
	Inflight int  `json:"inflight"`
	Draining bool `json:"draining"`
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/whoami", s.handleWhoami)
	mux.HandleFunc("GET /api/session", s.handleGetSession)
	mux.HandleFunc("POST /api/session", s.handlePostSession)
	mux.HandleFunc("POST /test/save", s.handleSeedSave)
	mux.HandleFunc("POST /test/query", s.handleSeedQuery)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	// The method-less patterns are less specific than the ones above, so
	// they catch only the wrong methods and answer 405 in JSON (the mux's
	// own 405 is plain text).
	s.methodNotAllowed(mux, "/api/whoami", "GET, HEAD")
	s.methodNotAllowed(mux, "/api/session", "GET, HEAD, POST")
	s.methodNotAllowed(mux, "/test/save", "POST")
	s.methodNotAllowed(mux, "/test/query", "POST")
	s.methodNotAllowed(mux, "/healthz", "GET, HEAD")
	s.methodNotAllowed(mux, "/{$}", "GET, HEAD")
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, "not_found", "no such page: "+r.URL.Path)
	})
	return mux
}

// sameOriginOnly refuses state-changing requests that a browser sent from
// another site (login CSRF through POST /test/save, for one): it trusts
// Sec-Fetch-Site, else compares Origin with Host (Go's
// CrossOriginProtection). Safe methods, and requests with neither header
// (curl, scripts, the seed's clients), pass.
func (s *Server) sameOriginOnly(h http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusForbidden, "cross_site", "cross-site "+r.Method+" refused: use this app's own page")
	}))
	return p.Handler(h)
}

func (s *Server) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/drain", func(w http.ResponseWriter, r *http.Request) {
		s.Drain()
		writeJSON(w, http.StatusOK, drainBody{Inflight: s.Inflight(), Draining: true})
	})
	mux.HandleFunc("POST /admin/undrain", func(w http.ResponseWriter, r *http.Request) {
		s.Undrain()
		writeJSON(w, http.StatusOK, drainBody{Inflight: s.Inflight(), Draining: false})
	})
	mux.HandleFunc("GET /admin/inflight", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, drainBody{Inflight: s.Inflight(), Draining: s.Draining()})
	})
	s.methodNotAllowed(mux, "/admin/drain", "POST")
	s.methodNotAllowed(mux, "/admin/undrain", "POST")
	s.methodNotAllowed(mux, "/admin/inflight", "GET, HEAD")
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, "not_found", "no such admin endpoint: "+r.URL.Path)
	})
	return mux
}

func (s *Server) methodNotAllowed(mux *http.ServeMux, pattern, allow string) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" is not allowed here; use "+allow)
	})
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	b, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, whoamiBody{Node: s.cfg.Node, Version: s.cfg.Version, Draining: s.Draining()})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	body := healthBody{Status: "ok", Node: s.cfg.Node, Version: s.cfg.Version}
	if s.Draining() {
		body.Status = "draining"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("health check: session store unavailable", "err", err)
		body.Status, body.Error = "redis_unavailable", "Redis did not answer PING"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// handleGetSession answers the session's name, 404 when there is none.
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.loadSession(w, r)
	if !ok {
		return
	}
	if sess == nil {
		s.writeError(w, http.StatusNotFound, "no_session", "no session yet: save a name first")
		return
	}
	writeJSON(w, http.StatusOK, s.sessionJSON(*sess))
}

// handlePostSession saves {"name": …} in a new session.
func (s *Server) handlePostSession(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		// Also keeps cross-site HTML forms out: they cannot send JSON.
		s.writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send Content-Type: application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		s.bodyError(w, err)
		return
	}
	// encoding/json silently turns invalid UTF-8 into U+FFFD; refuse it
	// before decoding so that names round-trip exactly.
	if !utf8.Valid(body) {
		s.writeError(w, http.StatusBadRequest, "invalid_utf8", "the request body is not valid UTF-8")
		return
	}
	var in struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Name == nil {
		s.writeError(w, http.StatusBadRequest, "bad_json", `send a JSON object {"name": "…"}`)
		return
	}
	name, code, msg := checkName(*in.Name)
	if code != "" {
		s.writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	sess, ok := s.saveSession(w, r, name)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.sessionJSON(sess))
}

// handleSeedSave is the seed app's POST /test/save: form field personName,
// answer "<node>,Session saved".
func (s *Server) handleSeedSave(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		err = r.ParseMultipartForm(maxBodyBytes)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		s.bodyError(w, err)
		return
	}
	raw := r.PostForm.Get("personName")
	if !utf8.ValidString(raw) {
		s.writeError(w, http.StatusBadRequest, "invalid_utf8", "personName is not valid UTF-8")
		return
	}
	name, code, msg := checkName(raw)
	if code != "" {
		s.writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	if _, ok := s.saveSession(w, r, name); !ok {
		return
	}
	writeText(w, s.cfg.Node+",Session saved")
}

// handleSeedQuery is the seed app's POST /test/query: "Hello,<name>,I am
// <node>" or "Session is empty".
func (s *Server) handleSeedQuery(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.loadSession(w, r)
	if !ok {
		return
	}
	if sess == nil {
		writeText(w, "Session is empty")
		return
	}
	writeText(w, "Hello,"+sess.Name+",I am "+s.cfg.Node)
}

// loadSession reads the request's session. It returns (nil, true) when the
// request has none (no cookie, a malformed one, or one Redis does not know,
// which is then cleared), and ok=false after it has written a 503.
func (s *Server) loadSession(w http.ResponseWriter, r *http.Request) (*Session, bool) {
	id := sessionID(r)
	if id == "" {
		if _, err := r.Cookie(CookieName); err == nil {
			s.clearSessionCookie(w) // garbage: drop it without asking Redis
		}
		return nil, true
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
	defer cancel()
	sess, err := s.store.Load(ctx, id)
	switch {
	case errors.Is(err, ErrNoSession):
		s.clearSessionCookie(w)
		return nil, true
	case err != nil:
		s.storeError(w, "load", err)
		return nil, false
	}
	return &sess, true
}

// saveSession stores name under a new session ID, deletes the session the
// request came with (if any) and sets the cookie. Issuing a fresh ID on every
// save means a client-chosen or planted ID never carries the saved state.
func (s *Server) saveSession(w http.ResponseWriter, r *http.Request, name string) (Session, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
	defer cancel()
	sess := Session{Name: name, SavedBy: s.cfg.Node, SavedAt: time.Now().Truncate(time.Second)}
	id := newSessionID()
	if err := s.store.Save(ctx, id, sess); err != nil {
		s.storeError(w, "save", err)
		return Session{}, false
	}
	if old := sessionID(r); old != "" {
		if err := s.store.Delete(ctx, old); err != nil {
			// The old session expires by its TTL anyway.
			s.log.Warn("could not delete the replaced session", "err", err)
		}
	}
	s.setSessionCookie(w, id)
	return sess, true
}

func (s *Server) sessionJSON(sess Session) sessionBody {
	b := sessionBody{Name: sess.Name, SavedBy: sess.SavedBy, Node: s.cfg.Node, Version: s.cfg.Version}
	if !sess.SavedAt.IsZero() {
		b.SavedAt = sess.SavedAt.UTC().Format(time.RFC3339)
	}
	return b
}

// checkName trims name and returns it, or an error code and message.
func checkName(name string) (string, string, string) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", "empty_name", "the name is empty"
	case len(name) > MaxNameBytes:
		return "", "name_too_long", "the name is longer than 256 bytes"
	case !utf8.ValidString(name):
		return "", "invalid_utf8", "the name is not valid UTF-8"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", "invalid_name", "the name contains control characters"
	}
	return name, "", ""
}

// bodyError answers a failure to read a request body.
func (s *Server) bodyError(w http.ResponseWriter, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		s.writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than 4 KiB")
		return
	}
	s.writeError(w, http.StatusBadRequest, "bad_body", "the request body could not be read")
}

// storeError answers 503 when Redis failed and logs why. The log line has
// the error, never the session's ID or contents.
func (s *Server) storeError(w http.ResponseWriter, op string, err error) {
	s.log.Error("session store unavailable", "op", op, "err", err)
	w.Header().Set("Retry-After", "1")
	s.writeError(w, http.StatusServiceUnavailable, "store_unavailable",
		"the session store (Redis) is unavailable; try again shortly")
}

func (s *Server) writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg, Node: s.cfg.Node, Version: s.cfg.Version})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs get here
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, text)
}
