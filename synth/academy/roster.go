package academy

import (
	"fmt"
	"strconv"
	"strings"
)

// OneRoster 1.2 CSV files and their columns (CSV binding of OneRoster 1.2,
// 1EdTech). Gradebook files (categories, lineItems, results) carry the
// columns shared by 1.1 and 1.2; see README.md.
var rosterFiles = []struct{ name, header string }{
	{"orgs", "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"},
	{"academicSessions", "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear"},
	{"courses", "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes"},
	{"classes", "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods"},
	{"users", "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns"},
	{"roles", "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId"},
	{"enrollments", "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate"},
	{"categories", "sourcedId,status,dateLastModified,title,weight"},
	{"lineItems", "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,categorySourcedId,gradingPeriodSourcedId,resultValueMin,resultValueMax"},
	{"results", "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment"},
}

const districtID = "ACAD-VIGIE"

func (w *world) yearID() string         { return "AS-" + strconv.Itoa(w.cal.Year) }
func (w *world) termID(p int) string    { return w.yearID() + "-" + w.cal.Periods[p].Name }
func lineItemID(class, p string) string { return "LI-" + class + "-" + p }

// csvRow appends fields as a CSV line.
func csvRow(b []byte, fields ...string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, f, ',')
	}
	return append(b, '\n')
}

// rosterStatic returns the rows of the roster that do not depend on
// students, per file name (users, roles and enrollments: the teachers).
func (w *world) rosterStatic() map[string][]byte {
	out := map[string][]byte{}
	add := func(file string, fields ...string) { out[file] = csvRow(out[file], fields...) }
	dlm := w.dateMod
	first, last := day(w.cal.First), day(w.cal.Last)
	add("orgs", districtID, "active", dlm, "Académie de Vigie (synthétique)", "district", "", "")
	for _, s := range w.lay.Schools {
		add("orgs", s.ID, "active", dlm, s.Name, "school", s.ID, districtID)
	}
	y := strconv.Itoa(w.cal.Year + 1)
	add("academicSessions", w.yearID(), "active", dlm, fmt.Sprintf("%d-%d", w.cal.Year, w.cal.Year+1), "schoolYear", first, last, "", y)
	var terms []string
	for p, per := range w.cal.Periods {
		add("academicSessions", w.termID(p), "active", dlm, "Trimestre "+strconv.Itoa(p+1), "term", day(per.First), day(per.Last), w.yearID(), y)
		terms = append(terms, w.termID(p))
	}
	termIDs := strings.Join(terms, ",")
	add("categories", "CAT-MOY", "active", dlm, "Moyenne trimestrielle", "1")
	seenCourse := map[string]bool{}
	rank := 0
	for di, d := range w.lay.Divisions {
		if di > 0 && w.lay.Divisions[di-1].School == d.School {
			rank++
		} else {
			rank = 0
		}
		sc := w.lay.Schools[d.School]
		grade := gradeCode[d.Level]
		hc := "CO-" + sc.ID + "-" + d.Level
		if !seenCourse[hc] {
			seenCourse[hc] = true
			add("courses", hc, "active", dlm, w.yearID(), d.Level, d.Level, grade, sc.ID, "", "")
			for _, sub := range subjects[sc.Track] {
				add("courses", hc+"-"+sub.Code, "active", dlm, w.yearID(), d.Level+" "+sub.Pronote, d.Level+"-"+sub.Code, grade, sc.ID, sub.Code, "")
			}
		}
		add("classes", d.ID, "active", dlm, d.Name, grade, hc, d.Name, "homeroom", "", sc.ID, termIDs, "", "", "")
		for _, sub := range subjects[sc.Track] {
			cid := d.ID + "-" + sub.Code
			add("classes", cid, "active", dlm, d.Name+" "+sub.Pronote, grade, hc+"-"+sub.Code, d.Name+"-"+sub.Code, "scheduled", "", sc.ID, termIDs, sub.Code, "", "")
			tid := fmt.Sprintf("P%s-%s-%d", sc.ID, sub.Code, rank/TeachersPerSubject+1)
			if rank%TeachersPerSubject == 0 {
				given, family := givenNames[(di*7+len(sub.Code))%len(givenNames)], familyNames[(di*13+len(sub.Code)*3)%len(familyNames)]
				add("users", tid, "active", dlm, "true", strings.ToLower(tid), "", given, family, "", tid, "", "", "", "", "", "", "", "", "", "", "", sc.ID, "")
				add("roles", "RL-"+tid, "active", dlm, tid, "primary", "teacher", first, last, sc.ID, "")
			}
			add("enrollments", "EN-"+tid+"-"+cid, "active", dlm, cid, sc.ID, tid, "teacher", "true", first, last)
			for p := range w.cal.Periods {
				add("lineItems", lineItemID(cid, w.cal.Periods[p].Name), "active", dlm, sub.Pronote+" "+w.cal.Periods[p].Name, "",
					day(w.cal.Periods[p].First), w.pEndISO[p], cid, "CAT-MOY", w.termID(p), "0", "20")
			}
		}
	}
	return out
}

// roster appends the student's user, role and enrollments.
func (k *worker) roster() {
	w, st := k.w, &k.st
	dlm := w.dateMod
	first, last := day(w.cal.First), day(w.cal.Last)
	if st.exitSlot < len(w.cal.Slots) {
		last = w.slotDay[max(0, st.exitSlot-1)]
	}
	grade := gradeCode[st.level]
	k.text[sORUsers] = csvRow(k.text[sORUsers], st.id, "active", dlm, "true", strings.ToLower(st.id), "", st.given, st.family, "",
		st.id, "", "", "", "", grade, "", "", "", "", "", "", st.school, "")
	k.text[sORRoles] = csvRow(k.text[sORRoles], "RL-"+st.id, "active", dlm, st.id, "primary", "student", first, last, st.school, "")
	b := csvRow(k.text[sOREnroll], "EN-"+st.id+"-"+st.class, "active", dlm, st.class, st.school, st.id, "student", "false", first, last)
	for _, sub := range subjects[st.track] {
		cid := st.class + "-" + sub.Code
		b = csvRow(b, "EN-"+st.id+"-"+cid, "active", dlm, cid, st.school, st.id, "student", "false", first, last)
	}
	k.text[sOREnroll] = b
}

// result appends a OneRoster result for a mark.
func (k *worker) result(subject string, per int, status string, mark float64) {
	w, st := k.w, &k.st
	pn := w.cal.Periods[per].Name
	score, scoreStatus, comment := "", "fully graded", ""
	switch status {
	case StatusOK:
		score = strconv.FormatFloat(mark, 'f', 1, 64)
	case StatusAbsent:
		scoreStatus, comment = "not submitted", "Abs"
	case StatusExempt:
		scoreStatus, comment = "exempt", "Disp"
	case StatusNotGraded:
		scoreStatus, comment = "not submitted", "N.Not"
	}
	k.text[sORResults] = csvRow(k.text[sORResults], "RS-"+st.id+"-"+subject+"-"+pn, "active", w.dateMod,
		lineItemID(st.class+"-"+subject, pn), st.id, scoreStatus, score, w.pEndISO[per], comment)
}
