package academy

import (
	"math"
	"strconv"
)

// xAPI vocabulary used in the statements (ADL verbs and activity types).
const (
	HomePage      = "https://ent.vigie.example"
	Platform      = "ENT Vigie"
	VerbCompleted = "http://adlnet.gov/expapi/verbs/completed"
	VerbAttempted = "http://adlnet.gov/expapi/verbs/attempted"
	VerbExperienc = "http://adlnet.gov/expapi/verbs/experienced"
)

// xapi appends the student's platform sessions as xAPI 1.0.3 statements,
// one JSON object a line, in time order within each week.
func (k *worker) xapi() {
	w, st, r := k.w, &k.st, k.xr
	b := k.text[sXAPI]
	driftWeek := w.cal.Weeks
	if st.signals&SigPlatform != 0 {
		driftWeek = w.cal.Slots[st.driftSlot].Week + 1
	}
	endWeek := w.cal.Weeks
	if st.driftEnd < len(w.cal.Slots) {
		endWeek = w.cal.Slots[st.driftEnd].Week
	}
	subs := subjects[st.track]
	for wk := range w.cal.Weeks {
		a := w.wFirst[wk]
		if a >= st.exitSlot {
			break
		}
		lambda := st.activity
		if wk >= st.lullWeek && wk < st.lullWeek+st.lullLen {
			lambda = 0
		}
		if wk >= driftWeek && wk < endWeek {
			lambda *= 0.05
		}
		n := poisson(r, lambda)
		for range n {
			s := a + r.IntN(min(w.wFirst[wk+1], st.exitSlot)-a)
			h := 8 + r.IntN(9)
			if r.IntN(2) == 0 {
				h = 17 + r.IntN(5)
			}
			sub := subs[r.IntN(len(subs))]
			verb := r.IntN(4) // 0, 1 experienced; 2 attempted; 3 completed
			b = append(b, `{"id":"`...)
			b = appendUUID(b, randUUID(r))
			b = append(b, `","actor":{"objectType":"Agent","account":{"homePage":"`+HomePage+`","name":"`...)
			b = append(b, st.id...)
			b = append(b, `"}},"verb":{"id":"`...)
			switch verb {
			case 0, 1:
				b = append(b, VerbExperienc+`","display":{"fr-FR":"a consulté"}}`...)
			case 2:
				b = append(b, VerbAttempted+`","display":{"fr-FR":"a tenté"}}`...)
			default:
				b = append(b, VerbCompleted+`","display":{"fr-FR":"a terminé"}}`...)
			}
			b = append(b, `,"object":{"objectType":"Activity","id":"`+HomePage+`/activites/`...)
			b = append(b, sub.Code...)
			b = append(b, '/')
			b = append(b, st.level...)
			if verb < 2 {
				b = append(b, "/ressource-"...)
				b = strconv.AppendInt(b, int64(1+r.IntN(60)), 10)
				b = append(b, `","definition":{"type":"http://adlnet.gov/expapi/activities/lesson"}}`...)
			} else {
				b = append(b, "/exercice-"...)
				b = strconv.AppendInt(b, int64(1+r.IntN(40)), 10)
				b = append(b, `","definition":{"type":"http://adlnet.gov/expapi/activities/assessment"}}`...)
				scaled := math.Round(clamp((st.ability+3*r.NormFloat64())/20, 0, 1)*100) / 100
				b = append(b, `,"result":{"score":{"scaled":`...)
				b = strconv.AppendFloat(b, scaled, 'f', -1, 64)
				if verb == 3 {
					b = append(b, `,"raw":`...)
					b = strconv.AppendFloat(b, math.Round(scaled*200)/10, 'f', -1, 64)
					b = append(b, `,"min":0,"max":20},"success":`...)
					b = strconv.AppendBool(b, scaled >= 0.5)
					b = append(b, `,"completion":true`...)
				} else {
					b = append(b, `},"completion":false`...)
				}
				b = append(b, `,"duration":"PT`...)
				b = strconv.AppendInt(b, int64(2+r.IntN(40)), 10)
				b = append(b, 'M')
				b = strconv.AppendInt(b, int64(r.IntN(60)), 10)
				b = append(b, `S"}`...)
			}
			b = append(b, `,"context":{"registration":"`...)
			b = appendUUID(b, st.registration)
			b = append(b, `","platform":"`+Platform+`","language":"fr-FR"},"timestamp":"`...)
			b = appendStamp(b, w.cal.Slots[s].Date, h, r.IntN(60), r.IntN(60))
			b = append(b, "\"}\n"...)
		}
	}
	k.text[sXAPI] = b
}
