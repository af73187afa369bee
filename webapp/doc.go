// Package webapp is the web app that runs beside each hbd daemon: it serves a
// small page and a JSON API that save and read a name in a session kept in
// Redis, so that whichever host holds the VIP serves the same users, and it
// exposes /healthz and a drain mode so hbd can hand the VIP over without
// failing a request.
//
// # Endpoints (main listener, default :8080)
//
//	GET  /                 the demo page (embedded, no CDN)
//	GET  /static/…         its script and style sheet
//	GET  /api/whoami       {"node","version","draining"}; no Redis work
//	GET  /api/session      read the session (slides its TTL)
//	POST /api/session      {"name": "…"} saves it, issuing a fresh session ID
//	POST /test/save        seed-compatible: form field personName
//	POST /test/query       seed-compatible: "Hello,<name>,I am <node>"
//	GET  /healthz          200 when Redis answers PING, else 503
//
// # Endpoints (admin listener, default the unix socket /run/hbd-webapp/admin.sock, mode 0660)
//
//	POST /admin/drain      enter drain mode
//	POST /admin/undrain    leave drain mode
//	GET  /admin/inflight   {"inflight":N,"draining":bool}
//
// Every response carries X-Served-By (the node name) and X-App-Version.
//
// # Sessions
//
// Session IDs are 256 random bits from crypto/rand, sent in an HttpOnly,
// SameSite=Lax cookie. An ID the client sends is only honoured if a session
// with that ID exists in Redis (the server-side existence check); an unknown,
// expired or malformed ID is ignored and a save issues a new one. Every save
// rotates the ID, so an ID an attacker planted in a victim's browser never
// becomes the victim's session. See docs/webapp.md for why an existence check
// was chosen over HMAC-signed IDs.
//
// # Concurrency
//
// A Server's methods are safe for concurrent use.
package webapp
