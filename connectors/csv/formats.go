package csv

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones such as Europe/Paris on hosts without a zoneinfo database

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Date and timestamp formats are written in one of three ways:
//
//   - a pattern: dd/mm/yyyy, dd/mm/yyyy HH:mm:ss, yyyy-mm-dd. Tokens: yyyy,
//     yy, mm (month; minutes right after a ":"), dd, HH or hh (24-hour
//     hour), ss. Days, months and hours may have one digit or two.
//   - a strftime format: %d/%m/%Y %H:%M:%S (%Y %y %m %d %H %M %S %z %%).
//   - a Go layout, recognised by its reference year 2006.

// layout turns a date or timestamp format into a Go layout and checks that
// it can write and read back a date that tells days from months.
func layout(option, format string, withTime bool) (string, error) {
	var l string
	switch {
	case strings.Contains(format, "2006"):
		l = format
	case strings.Contains(format, "%"):
		l = strftimeLayout(format)
	default:
		l = patternLayout(format)
	}
	ref := time.Date(2025, 9, 30, 0, 0, 0, 0, time.UTC)
	if withTime {
		ref = time.Date(2025, 9, 30, 17, 45, 58, 0, time.UTC)
	}
	back, err := time.Parse(l, ref.Format(l))
	if err != nil || !back.Equal(ref) {
		what := "a day, a month and a year"
		if withTime {
			what += ", hours, minutes and seconds"
		}
		return "", fmt.Errorf("connector %q: option %q: %q is not a usable format: expected %s, as in %q, %q or a Go layout such as %q: %w",
			SourceName, option, format, what, example(withTime), exampleStrftime(withTime), exampleGo(withTime), protocol.ErrConfig)
	}
	return l, nil
}

func example(withTime bool) string {
	if withTime {
		return "dd/mm/yyyy HH:mm:ss"
	}
	return "dd/mm/yyyy"
}

func exampleStrftime(withTime bool) string {
	if withTime {
		return "%d/%m/%Y %H:%M:%S"
	}
	return "%d/%m/%Y"
}

func exampleGo(withTime bool) string {
	if withTime {
		return "02/01/2006 15:04:05"
	}
	return "02/01/2006"
}

// patternLayout translates a dd/mm/yyyy pattern into a Go layout.
func patternLayout(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		rest := p[i:]
		switch {
		case strings.HasPrefix(rest, "yyyy"), strings.HasPrefix(rest, "YYYY"):
			b.WriteString("2006")
			i += 4
		case strings.HasPrefix(rest, "yy"), strings.HasPrefix(rest, "YY"):
			b.WriteString("06")
			i += 2
		case strings.HasPrefix(rest, "mm"), strings.HasPrefix(rest, "MM"):
			if i > 0 && p[i-1] == ':' {
				b.WriteString("04")
			} else {
				b.WriteString("1")
			}
			i += 2
		case strings.HasPrefix(rest, "dd"), strings.HasPrefix(rest, "DD"):
			b.WriteString("2")
			i += 2
		case strings.HasPrefix(rest, "HH"), strings.HasPrefix(rest, "hh"):
			b.WriteString("15")
			i += 2
		case strings.HasPrefix(rest, "ss"), strings.HasPrefix(rest, "SS"):
			b.WriteString("05")
			i += 2
		default:
			b.WriteByte(p[i])
			i++
		}
	}
	return b.String()
}

// strftimeLayout translates a strftime format into a Go layout.
func strftimeLayout(f string) string {
	r := strings.NewReplacer("%Y", "2006", "%y", "06", "%m", "1", "%d", "2", "%H", "15",
		"%M", "04", "%S", "05", "%z", "-0700", "%%", "%")
	return r.Replace(f)
}

// newFormats reads the date_format, timestamp_format and timezone options.
func newFormats(dateFormat, tsFormat, zone string) (*formats, error) {
	f := defaultFormats()
	if dateFormat != "" {
		l, err := layout(optDateFormat, dateFormat, false)
		if err != nil {
			return nil, err
		}
		f.dateLayout = l
	}
	if tsFormat != "" {
		l, err := layout(optTimestampFormat, tsFormat, true)
		if err != nil {
			return nil, err
		}
		f.tsLayouts = []string{l}
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" || zone == "Local" {
		return nil, fmt.Errorf("connector %q: option %q: %q is not a time zone: expected an IANA name such as \"UTC\" or \"Europe/Paris\": %w",
			SourceName, optTimezone, zone, protocol.ErrConfig)
	}
	f.loc = loc
	return f, nil
}
