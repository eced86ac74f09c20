package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role says what an account may see.
type Role string

// Roles. A teacher sees the students and alerts of one school; steering
// sees aggregates only (no student); an admin sees everything, the data
// engineer's page included.
const (
	RoleTeacher  Role = "teacher"
	RoleSteering Role = "steering"
	RoleAdmin    Role = "admin"
)

// User is an account. Hash is a bcrypt hash of the password.
type User struct {
	Name   string
	Role   Role
	School string // teachers only
	Hash   []byte
}

// NewUser returns an account with password hashed by bcrypt.
func NewUser(name string, role Role, school, password string) (User, error) {
	if err := checkRole(role, school); err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	return User{Name: name, Role: role, School: school, Hash: h}, nil
}

func checkRole(role Role, school string) error {
	switch role {
	case RoleTeacher:
		if school == "" {
			return errors.New("a teacher needs a school")
		}
	case RoleSteering, RoleAdmin:
	default:
		return fmt.Errorf("unknown role %q (teacher, steering, admin)", role)
	}
	return nil
}

// LoadUsers reads accounts from a CSV file with the header
// name,role,school,bcrypt_hash (hash made with `htpasswd -nbBC 10 NAME PW`
// or any bcrypt tool).
func LoadUsers(path string) ([]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("users %s: %w", path, err)
	}
	var out []User
	for i, r := range rows {
		if i == 0 {
			continue
		}
		if len(r) != 4 {
			return nil, fmt.Errorf("users %s line %d: want name,role,school,bcrypt_hash", path, i+1)
		}
		u := User{Name: r[0], Role: Role(r[1]), School: r[2], Hash: []byte(r[3])}
		if err := checkRole(u.Role, u.School); err != nil {
			return nil, fmt.Errorf("users %s line %d: %w", path, i+1, err)
		}
		if _, err := bcrypt.Cost(u.Hash); err != nil {
			return nil, fmt.Errorf("users %s line %d: not a bcrypt hash: %w", path, i+1, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// sessionCookie names the session cookie.
const sessionCookie = "vigie_session"

// sessionTTL is how long a session lasts without use.
const sessionTTL = 8 * time.Hour

type session struct {
	id, csrf string
	user     *User // nil before login
	expires  time.Time
}

// sessions are kept in memory: restarting the console logs everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// get returns the request's live session, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil || time.Now().After(ss.expires) {
		delete(s.m, c.Value)
		return nil
	}
	ss.expires = time.Now().Add(sessionTTL)
	return ss
}

// start creates a session (a new id at every login: no fixation) and sets
// its cookie: HttpOnly, SameSite=Strict, Secure over TLS.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, u *User) *session {
	ss := &session{id: randomToken(), csrf: randomToken(), user: u, expires: time.Now().Add(sessionTTL)}
	s.mu.Lock()
	if old, err := r.Cookie(sessionCookie); err == nil {
		delete(s.m, old.Value)
	}
	s.m[ss.id] = ss
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return ss
}

func (s *sessions) end(w http.ResponseWriter, ss *session) {
	s.mu.Lock()
	delete(s.m, ss.id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// validCSRF reports whether the form's csrf field is the session's token.
func validCSRF(ss *session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return ss != nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// dummyHash makes a login for an unknown name cost as much as a wrong
// password: a bcrypt hash of "vigie" at bcrypt.DefaultCost, written out
// rather than computed at package init, which cost about 60 ms of CPU in
// every vigie process (each plugin process included) whether it served a
// console or not (TestDummyHashCost checks it).
var dummyHash = []byte("$2a$10$q8qrNfjDDlVHoSmXRCFKG.FbD.pw5ZOalCyFXB61Mf6rJLv1UvOxq")

func checkPassword(u *User, password string) bool {
	if u == nil {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(u.Hash, []byte(password)) == nil
}
