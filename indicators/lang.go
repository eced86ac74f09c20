package indicators

import "strings"

// french are the reasons in French, by their English format.
var french = map[string]string{
	"%d weeks":                         "%d semaines",
	"%d days":                          "%d jours",
	"absences %s %% over %s":           "absences %s %% sur %s",
	"%d unjustified half-days over %s": "%d demi-journées d'absence non justifiée en %s",
	"unjustified absences rising: %d over %s, usually %s":                                   "absences non justifiées en hausse : %d en %s (habituellement %s)",
	"unjustified absences %d weeks in a row (%d half-days)":                                 "absences non justifiées %d semaines de suite (%d demi-journées)",
	"unjustified absences well above the student's usual rate (score %s)":                   "absences non justifiées bien au-dessus du rythme habituel de l'élève (score %s)",
	"unjustified absences %d months running (%d half-days), usually %s %% of months":        "absences non justifiées %d mois de suite (%d demi-journées), habituellement %s %% des mois",
	"%d unjustified half-days over %s (usually %s), %d this month; chance of a drift %s %%": "%d demi-journées d'absence non justifiée en %s (habituellement %s), %d ce mois-ci ; probabilité de décrochage %s %%",
	"platform sessions %d over %s, usually %s":                                              "%d connexions à l'ENT en %s (habituellement %s)",
	"no platform activity for %d days":                                                      "aucune connexion à l'ENT depuis %d jours",
	"average %s in T%d":                                                                     "moyenne %s au T%d",
	"average %s → %s (T%d → T%d)":                                                           "moyenne %s → %s (T%d → T%d)",
	", %s %s → %s":                                                                          ", %s %s → %s",
	"%d marks missing in T%d":                                                               "%d notes manquantes au T%d",
	"failing %s":                                                                            "sous 8/20 : %s",
}

// tr is format in the language of lang (English when it has no
// translation).
func (c *Config) tr(format string) string {
	if c.Lang == "fr" {
		if f, ok := french[format]; ok {
			return f
		}
	}
	return format
}

// decimals writes decimal commas in French ("1.5" becomes "1,5").
func (c *Config) decimals(s string) string {
	if c.Lang != "fr" || !strings.Contains(s, ".") {
		return s
	}
	b := []byte(s)
	for i := 1; i+1 < len(b); i++ {
		if b[i] == '.' && b[i-1] >= '0' && b[i-1] <= '9' && b[i+1] >= '0' && b[i+1] <= '9' {
			b[i] = ','
		}
	}
	return string(b)
}
