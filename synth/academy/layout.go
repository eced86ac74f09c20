package academy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// School is a collège, a lycée général et technologique or a lycée
// professionnel.
type School struct {
	ID    string // UAI-like identifier: 7 digits and a check letter
	Name  string
	Track Track
}

// Division is a class of students (a "division": 3eB) in a school.
type Division struct {
	ID     string // school id, "-", level and letter: 0751001A-3eB
	School int    // index in Layout.Schools
	Level  string // 6e..3e, 2nde, 1re, Tle, 2ndePro, 1rePro, TlePro
	Name   string // 3eB
	First  int    // index of its first student
	Count  int    // number of students
}

// Layout is the structure of the academy: schools, classes and which
// students are in which class. Students are numbered 0..N-1 and a
// division holds a contiguous range of them.
type Layout struct {
	Schools   []School
	Divisions []Division
	Students  int
	idWidth   int
}

var levels = [numTracks][]string{
	College: {"6e", "5e", "4e", "3e"},
	LGT:     {"2nde", "1re", "Tle"},
	LP:      {"2ndePro", "1rePro", "TlePro"},
}

// birthYear offset: the usual age at the start of the year, per level.
var levelAge = map[string]int{"6e": 11, "5e": 12, "4e": 13, "3e": 14, "2nde": 15, "1re": 16, "Tle": 17,
	"2ndePro": 15, "1rePro": 16, "TlePro": 17}

// gradeCode is the CEDS grade level of a French level, for OneRoster.
var gradeCode = map[string]string{"6e": "06", "5e": "07", "4e": "08", "3e": "09", "2nde": "10", "1re": "11", "Tle": "12",
	"2ndePro": "10", "1rePro": "11", "TlePro": "12"}

// Subject is a subject taught in a track.
type Subject struct {
	Code    string // maths
	Pronote string // MATHEMATIQUES, the name in a Pronote-style export
}

var subjects = [numTracks][]Subject{
	College: {{"maths", "MATHÉMATIQUES"}, {"francais", "FRANÇAIS"}, {"histoire_geo", "HISTOIRE-GÉOGRAPHIE"},
		{"anglais", "ANGLAIS LV1"}, {"svt", "SCIENCES VIE & TERRE"}, {"physique", "PHYSIQUE-CHIMIE"}},
	LGT: {{"maths", "MATHÉMATIQUES"}, {"francais", "FRANÇAIS"}, {"histoire_geo", "HISTOIRE-GÉOGRAPHIE"},
		{"anglais", "ANGLAIS LV1"}, {"svt", "SCIENCES VIE & TERRE"}, {"physique", "PHYSIQUE-CHIMIE"}},
	LP: {{"maths", "MATHÉMATIQUES"}, {"francais", "FRANÇAIS"}, {"histoire_geo", "HISTOIRE-GÉOGRAPHIE"},
		{"anglais", "ANGLAIS LV1"}, {"pse", "PRÉVENTION SANTÉ ENVIRONNEMENT"}, {"enseignement_pro", "ENSEIGNEMENT PROFESSIONNEL"}},
}

// Subjects returns the subjects taught in a track.
func Subjects(t Track) []Subject { return subjects[t] }

var uaiLetters = "ABCDEFGHJKLMNPRSTUVWXYZ"

// uai returns a UAI-like id: département (3 digits), a 4-digit number and
// the check letter (the 7-digit number modulo 23).
func uai(dept, n int) string {
	num := dept*10000 + n
	return fmt.Sprintf("%07d%c", num, uaiLetters[num%23])
}

var schoolNames = []string{"Jean Moulin", "Victor Hugo", "Marie Curie", "Jules Ferry", "Louise Michel", "Jean Jaurès",
	"Simone Veil", "Paul Éluard", "Albert Camus", "Condorcet", "Colette", "George Sand", "Pierre Mendès France",
	"Olympe de Gouges", "Aimé Césaire", "Émile Zola", "Gustave Eiffel", "Honoré de Balzac", "Jacques Prévert", "Rosa Parks"}

// NewLayout spreads students over schools of the three tracks (by the
// profile's shares) and classes of about the profile's class size. It uses
// its own random stream of the seed, so it does not depend on the students.
func NewLayout(p Profile, seed uint64, students, schools int) (*Layout, error) {
	if students < 1 {
		return nil, fmt.Errorf("students = %d: want at least 1", students)
	}
	if schools < 1 {
		return nil, fmt.Errorf("schools = %d: want at least 1", schools)
	}
	r := rand.New(rand.NewPCG(seed, 0x5c4001))
	sum := p.TrackShare.College + p.TrackShare.LGT + p.TrackShare.LP
	// Schools per track, by largest remainder, each non-empty track getting
	// at least one school when there are enough.
	nSchools := [numTracks]int{}
	nStudents := [numTracks]int{}
	left, leftSt := schools, students
	for t := College; t < numTracks; t++ {
		share := p.TrackShare.Of(t) / sum
		if t == numTracks-1 {
			nSchools[t], nStudents[t] = left, leftSt
			break
		}
		nSchools[t] = int(math.Round(float64(schools) * share))
		if share > 0 && nSchools[t] == 0 && left > 0 {
			nSchools[t] = 1
		}
		nSchools[t] = min(nSchools[t], left-min(left-nSchools[t], 0))
		if left-nSchools[t] < 1 && t < numTracks-1 && p.TrackShare.LP > 0 && schools >= 3 {
			nSchools[t] = left - 1
		}
		nStudents[t] = int(math.Round(float64(students) * share))
		nStudents[t] = min(nStudents[t], leftSt)
		left -= nSchools[t]
		leftSt -= nStudents[t]
	}
	// A track with students but no school gives them to the previous one.
	for t := numTracks - 1; t > College; t-- {
		if nSchools[t] == 0 && nStudents[t] > 0 {
			nStudents[t-1] += nStudents[t]
			nStudents[t] = 0
		}
	}
	if nSchools[College] == 0 && nStudents[College] > 0 {
		for t := LGT; t < numTracks; t++ {
			if nSchools[t] > 0 {
				nStudents[t] += nStudents[College]
				nStudents[College] = 0
				break
			}
		}
	}
	l := &Layout{Students: students, idWidth: max(4, len(fmt.Sprint(students)))}
	depts := []int{75, 92, 93, 94, 77, 78, 91, 95}
	serial := 1000
	for t := College; t < numTracks; t++ {
		for s := range nSchools[t] {
			serial += 1 + r.IntN(40)
			dept := depts[(len(l.Schools))%len(depts)]
			kind := [...]string{"Collège", "Lycée", "Lycée professionnel"}[t]
			sc := School{ID: uai(dept, serial), Track: t,
				Name: kind + " " + schoolNames[r.IntN(len(schoolNames))]}
			l.Schools = append(l.Schools, sc)
			// students of this school: an even split of the track's students
			n := nStudents[t] / nSchools[t]
			if s < nStudents[t]%nSchools[t] {
				n++
			}
			l.addDivisions(len(l.Schools)-1, t, n, int(p.ClassSize.Of(t)))
		}
	}
	return l, nil
}

func (l *Layout) addDivisions(school int, t Track, n, size int) {
	lv := levels[t]
	for i, level := range lv {
		m := n / len(lv)
		if i < n%len(lv) {
			m++
		}
		if m == 0 {
			continue
		}
		k := (m + size - 1) / size
		for c := range k {
			cnt := m / k
			if c < m%k {
				cnt++
			}
			name := level + string(rune('A'+c%26))
			if c >= 26 {
				name += fmt.Sprint(c / 26)
			}
			first := 0
			if len(l.Divisions) > 0 {
				d := l.Divisions[len(l.Divisions)-1]
				first = d.First + d.Count
			}
			l.Divisions = append(l.Divisions, Division{
				ID: l.Schools[school].ID + "-" + name, School: school, Level: level, Name: name, First: first, Count: cnt,
			})
		}
	}
}

// DivisionOf returns the index of the division of student i.
func (l *Layout) DivisionOf(i int) int {
	return sort.Search(len(l.Divisions), func(k int) bool { d := l.Divisions[k]; return d.First+d.Count > i })
}

// StudentID returns the id of student i: S and a zero-padded number from 1.
func (l *Layout) StudentID(i int) string { return fmt.Sprintf("S%0*d", l.idWidth, i+1) }

// TeachersPerSubject is how many divisions one teacher takes in a subject.
const TeachersPerSubject = 5

// TeacherID returns the id of the teacher of a subject in a division.
func (l *Layout) TeacherID(div int, subject string) string {
	d := l.Divisions[div]
	// rank of the division in its school
	k := 0
	for j := div - 1; j >= 0 && l.Divisions[j].School == d.School; j-- {
		k++
	}
	return fmt.Sprintf("P%s-%s-%d", l.Schools[d.School].ID, subject, k/TeachersPerSubject+1)
}

var givenNames = []string{"Léa", "Emma", "Chloé", "Inès", "Manon", "Camille", "Zoé", "Anaïs", "Jade", "Louise",
	"Maëlys", "Océane", "Sarah", "Yasmine", "Élodie", "Lucas", "Hugo", "Nathan", "Théo", "Louis", "Mathéo", "Noah",
	"Enzo", "Adam", "Rayan", "Jérémy", "Loïc", "Kévin", "Mohamed", "Gaël", "Aurélien", "Clément", "Amélie", "Héloïse"}

var familyNames = []string{"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
	"Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
	"Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez",
	"Benali", "Nguyen", "Da Silva", "Lemaître", "Bréhier", "Gauthier", "Chevalier", "Müller"}
