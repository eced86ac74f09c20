package pronote

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// fold lowercases s, removes French accents and turns every run of
// punctuation or spaces into one space: "Demi-journée" and "demi journee"
// fold to the same key, "N.Not" and "n not" too.
func fold(s string) string {
	var sb strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		switch r {
		case 'à', 'â', 'ä', 'á':
			r = 'a'
		case 'é', 'è', 'ê', 'ë':
			r = 'e'
		case 'î', 'ï', 'í':
			r = 'i'
		case 'ô', 'ö', 'ó':
			r = 'o'
		case 'ù', 'û', 'ü', 'ú':
			r = 'u'
		case 'ç':
			r = 'c'
		case 'œ':
			sb.WriteString("oe")
			space = false
			continue
		case '°', 'º':
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteRune(r)
			space = false
			continue
		}
		space = true
	}
	return sb.String()
}

// trim removes spaces, including the no-break spaces spreadsheets write.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '\u00a0' || r == '\u202f' })
}

// Mark statuses, the values of the mark_status column.
const (
	statusOK           = "ok"
	statusAbsent       = "absent"
	statusExempt       = "exempt"
	statusNotGraded    = "not_graded"
	statusUnfit        = "unfit"
	statusNotSubmitted = "not_submitted"
	statusMissing      = "missing"
)

// markCodes maps the folded codes written instead of a mark to a status.
var markCodes = map[string]string{
	"abs": statusAbsent, "absent": statusAbsent, "absente": statusAbsent, "a": statusAbsent,
	"disp": statusExempt, "dispense": statusExempt, "dispensee": statusExempt, "d": statusExempt,
	"n not": statusNotGraded, "nnot": statusNotGraded, "nn": statusNotGraded, "non note": statusNotGraded,
	"non notee": statusNotGraded, "n note": statusNotGraded, "nnote": statusNotGraded,
	"inap": statusUnfit, "inapte": statusUnfit,
	"nr": statusNotSubmitted, "n r": statusNotSubmitted, "non rendu": statusNotSubmitted, "non rendue": statusNotSubmitted,
}

// markCodesDoc is how the expected codes are named in messages.
const markCodesDoc = `a number with a decimal comma ("12,5"), a mark on its scale ("15/40"), or Abs, Disp, N.Not, Inap, NR`

// parseNumber reads a decimal number written with a comma or a point.
func parseNumber(s string) (float64, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\u00a0', '\u202f':
			return -1
		case ',':
			return '.'
		}
		return r
	}, s)
	if s == "" || strings.ContainsAny(s, "eExXpPnN_+") {
		return 0, false // no exponents, hex, NaN, Inf or signs: not a mark
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// mark is a parsed Note field.
type mark struct {
	raw    float64
	scale  float64 // 0 unless written in the field ("15/40")
	status string
}

// parseMark reads a Note field.
func parseMark(s string) (mark, error) {
	s = trim(s)
	if s == "" {
		return mark{status: statusMissing}, nil
	}
	if st, ok := markCodes[fold(s)]; ok {
		return mark{status: st}, nil
	}
	num, den, slash := strings.Cut(s, "/")
	v, ok := parseNumber(trim(num))
	if !ok || v < 0 {
		return mark{}, fmt.Errorf("expected %s, got %q", markCodesDoc, s)
	}
	m := mark{raw: v, status: statusOK}
	if slash {
		sc, ok := parseNumber(trim(den))
		if !ok || sc <= 0 {
			return mark{}, fmt.Errorf("expected a mark on a positive scale such as \"15/40\", got %q", s)
		}
		m.scale = sc
	}
	return m, nil
}

// parseScale reads a Barème field: "20", "/20", "sur 20", "20,00".
func parseScale(s string) (float64, bool) {
	s = trim(s)
	s = strings.TrimPrefix(s, "/")
	if f := fold(s); strings.HasPrefix(f, "sur ") {
		s = s[len(s)-len(f)+len("sur "):]
	}
	v, ok := parseNumber(trim(s))
	return v, ok && v > 0
}

// parseDate reads dd/mm/yyyy (or d/m/yy, with /, - or . between) and
// yyyy-mm-dd, into days since 1970-01-01.
func parseDate(s string) (int64, bool) {
	t, ok := parseDay(trim(s))
	if !ok {
		return 0, false
	}
	d := t.Unix() / 86400
	if t.Unix()%86400 < 0 {
		d--
	}
	return d, true
}

func parseDay(s string) (time.Time, bool) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '-' || r == '.' })
	if len(parts) != 3 {
		return time.Time{}, false
	}
	n := make([]int, 3)
	for i, p := range parts {
		if len(p) == 0 || len(p) > 4 {
			return time.Time{}, false
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return time.Time{}, false
		}
		n[i] = v
	}
	d, m, y := n[0], n[1], n[2]
	switch {
	case len(parts[0]) == 4: // yyyy-mm-dd
		y, m, d = n[0], n[1], n[2]
	case len(parts[2]) == 2:
		y += 2000
	case len(parts[2]) != 4:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return time.Time{}, false // 31/02, month 13...
	}
	return t, true
}

// parseTimestamp reads "dd/mm/yyyy HH:MM[:SS]" (also "à HH:MM" and
// "HHhMM"), or a date alone (midnight), in loc; it returns microseconds
// since the epoch, UTC.
func parseTimestamp(s string, loc *time.Location) (int64, bool) {
	s = trim(s)
	day, clock, _ := strings.Cut(s, " ")
	t, ok := parseDay(day)
	if !ok {
		return 0, false
	}
	clock = trim(clock)
	clock = trim(strings.TrimPrefix(clock, "à"))
	var h, m, sec int
	if clock != "" {
		parts := strings.FieldsFunc(clock, func(r rune) bool { return r == ':' || r == 'h' || r == 'H' })
		if len(parts) < 2 || len(parts) > 3 {
			return 0, false
		}
		v := [3]int{}
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || len(p) > 2 {
				return 0, false
			}
			v[i] = n
		}
		h, m, sec = v[0], v[1], v[2]
		if h > 23 || m > 59 || sec > 59 {
			return 0, false
		}
	}
	lt := time.Date(t.Year(), t.Month(), t.Day(), h, m, sec, 0, loc)
	return lt.UnixMicro(), true
}

// parseBool reads Oui/Non and its usual variants.
func parseBool(s string) (v, ok bool) {
	switch fold(s) {
	case "oui", "o", "x", "yes", "y", "true", "vrai", "1":
		return true, true
	case "non", "n", "no", "false", "faux", "0":
		return false, true
	}
	return false, false
}

// Half-day values of the half column.
const (
	halfAM = "AM"
	halfPM = "PM"
)

// parseHalf reads a Demi-journée field: the halves of the day it covers.
func parseHalf(s string) ([]string, bool) {
	switch fold(s) {
	case "matin", "matinee", "m", "am":
		return []string{halfAM}, true
	case "apres midi", "apres", "pm", "a", "s", "soir":
		return []string{halfPM}, true
	case "journee", "journee entiere", "jour", "j", "journee complete":
		return []string{halfAM, halfPM}, true
	}
	return nil, false
}

// round4 rounds a normalised mark to 4 decimals, so that 16,6/40 gives 8.3
// and not 8.299999999999999.
func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }
