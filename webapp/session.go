package webapp

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
)

// CookieName is the name of the session cookie.
const CookieName = "hbd_session"

// idBytes is the size of a session ID: 256 bits from crypto/rand, well above
// the 128 bits OWASP asks for, so IDs cannot be guessed.
const idBytes = 32

// idLen is the length of an ID in unpadded base64url.
var idLen = base64.RawURLEncoding.EncodedLen(idBytes)

// newSessionID returns a fresh random session ID.
func newSessionID() string {
	b := make([]byte, idBytes)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead when the OS cannot supply randomness).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormedID reports whether id has the shape of an ID this package issues.
// A malformed cookie is dropped without asking Redis.
func wellFormedID(id string) bool {
	if len(id) != idLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil
}

// sessionID returns the well-formed session ID the request carries, or "".
// Whether the server issued it is for the Store to say.
func sessionID(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil || !wellFormedID(c.Value) {
		return ""
	}
	return c.Value
}

// setSessionCookie sends the session cookie. It has no Max-Age, so the
// browser drops it when it closes; Redis's sliding TTL ends it on the server.
func (s *Server) setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.cfg.CookieSecure,
		SameSite: http.SameSiteLaxMode,
	})
}

// clearSessionCookie tells the browser to forget a session cookie the server
// does not know.
func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.cfg.CookieSecure,
		SameSite: http.SameSiteLaxMode,
	})
}
