package console

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDummyHashCost checks that the hash an unknown name is checked
// against is a valid bcrypt hash at the cost real passwords get, so that
// such a login takes as long as a wrong password.
func TestDummyHashCost(t *testing.T) {
	cost, err := bcrypt.Cost(dummyHash)
	if err != nil {
		t.Fatalf("dummyHash is not a bcrypt hash: %v", err)
	}
	if cost != bcrypt.DefaultCost {
		t.Errorf("dummyHash has cost %d, want %d", cost, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword(dummyHash, []byte("vigie")); err != nil {
		t.Errorf("dummyHash does not match its password: %v", err)
	}
	if checkPassword(nil, "vigie") {
		t.Error("checkPassword accepted an unknown user")
	}
}
