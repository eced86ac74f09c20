package oneroster

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// Versions of OneRoster this source reads.
const (
	V11 = "1.1"
	V12 = "1.2"
)

// kind is the type of a column's values.
type kind int

const (
	kString   kind = iota // utf8, also enumerations and comma-separated lists
	kDate                 // date32, yyyy-mm-dd
	kDateTime             // timestamp_us UTC, ISO 8601
	kBool                 // true / false
	kFloat                // float64
	kYear                 // int32 (schoolYear)
)

func (k kind) arrow() arrow.DataType {
	switch k {
	case kDate:
		return arrow.FixedWidthTypes.Date32
	case kDateTime:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case kBool:
		return arrow.FixedWidthTypes.Boolean
	case kFloat:
		return arrow.PrimitiveTypes.Float64
	case kYear:
		return arrow.PrimitiveTypes.Int32
	}
	return arrow.BinaryTypes.String
}

func (k kind) expected() string {
	switch k {
	case kDate:
		return "a date yyyy-mm-dd"
	case kDateTime:
		return "an ISO 8601 date and time such as 2025-08-29T00:00:00.000Z"
	case kBool:
		return "true or false"
	case kFloat:
		return "a number"
	case kYear:
		return "a year such as 2026"
	}
	return "text"
}

// column is one column of a table.
type column struct {
	name string
	kind kind
	// ref names the table whose sourcedIds the values must be; list says
	// the field holds several, separated by commas.
	ref  string
	list bool
	// required: a row without a value is dead-lettered (unless it is
	// being deleted in a delta).
	required bool
	// only, when set, is the one version that has the column.
	only string
}

// Table names, as in the `table` option and the bundle's file names.
const (
	tOrgs             = "orgs"
	tAcademicSessions = "academicSessions"
	tCourses          = "courses"
	tClasses          = "classes"
	tUsers            = "users"
	tRoles            = "roles"
	tEnrollments      = "enrollments"
	tCategories       = "categories"
	tLineItems        = "lineItems"
	tResults          = "results"
)

// Tables lists the tables the source reads, in the order of the option.
var Tables = []string{tOrgs, tAcademicSessions, tCourses, tClasses, tUsers, tRoles, tEnrollments, tCategories, tLineItems, tResults}

// entity names one row of a table, for messages.
var entity = map[string]string{
	tOrgs: "org", tAcademicSessions: "academic session", tCourses: "course", tClasses: "class",
	tUsers: "user", tRoles: "role", tEnrollments: "enrollment", tCategories: "category",
	tLineItems: "line item", tResults: "result",
}

func base(cols ...column) []column {
	return append([]column{
		{name: "sourcedId", required: true},
		{name: "status"},
		{name: "dateLastModified", kind: kDateTime},
	}, cols...)
}

// columns are the CSV binding's columns of each table, OneRoster 1.1 and
// 1.2 together (see column.only).
var columns = map[string][]column{
	tOrgs: base(
		column{name: "name"}, column{name: "type"}, column{name: "identifier"},
		column{name: "parentSourcedId", ref: tOrgs},
	),
	tAcademicSessions: base(
		column{name: "title"}, column{name: "type"},
		column{name: "startDate", kind: kDate}, column{name: "endDate", kind: kDate},
		column{name: "parentSourcedId", ref: tAcademicSessions},
		column{name: "schoolYear", kind: kYear},
	),
	tCourses: base(
		column{name: "schoolYearSourcedId", ref: tAcademicSessions},
		column{name: "title"}, column{name: "courseCode"}, column{name: "grades"},
		column{name: "orgSourcedId", ref: tOrgs, required: true},
		column{name: "subjects"}, column{name: "subjectCodes"},
	),
	tClasses: base(
		column{name: "title"}, column{name: "grades"},
		column{name: "courseSourcedId", ref: tCourses, required: true},
		column{name: "classCode"}, column{name: "classType"}, column{name: "location"},
		column{name: "schoolSourcedId", ref: tOrgs, required: true},
		column{name: "termSourcedIds", ref: tAcademicSessions, list: true},
		column{name: "subjects"}, column{name: "subjectCodes"}, column{name: "periods"},
	),
	tUsers: base(
		column{name: "enabledUser", kind: kBool},
		column{name: "orgSourcedIds", ref: tOrgs, list: true, only: V11},
		column{name: "role", only: V11},
		column{name: "username"}, column{name: "userIds"},
		column{name: "givenName"}, column{name: "familyName"}, column{name: "middleName"},
		column{name: "identifier"}, column{name: "email"}, column{name: "sms"}, column{name: "phone"},
		column{name: "agentSourcedIds", ref: tUsers, list: true},
		column{name: "grades"}, column{name: "password"},
		column{name: "userMasterIdentifier", only: V12},
		column{name: "resourceSourcedIds", only: V12},
		column{name: "preferredGivenName", only: V12},
		column{name: "preferredMiddleName", only: V12},
		column{name: "preferredFamilyName", only: V12},
		column{name: "primaryOrgSourcedId", ref: tOrgs, only: V12},
		column{name: "pronouns", only: V12},
	),
	tRoles: base(
		column{name: "userSourcedId", ref: tUsers, required: true},
		column{name: "roleType"}, column{name: "role"},
		column{name: "beginDate", kind: kDate}, column{name: "endDate", kind: kDate},
		column{name: "orgSourcedId", ref: tOrgs, required: true},
		column{name: "userProfileSourcedId"},
	),
	tEnrollments: base(
		column{name: "classSourcedId", ref: tClasses, required: true},
		column{name: "schoolSourcedId", ref: tOrgs, required: true},
		column{name: "userSourcedId", ref: tUsers, required: true},
		column{name: "role"}, column{name: "primary", kind: kBool},
		column{name: "beginDate", kind: kDate}, column{name: "endDate", kind: kDate},
	),
	tCategories: base(
		column{name: "title"},
		column{name: "weight", kind: kFloat, only: V12},
	),
	tLineItems: base(
		column{name: "title"}, column{name: "description"},
		column{name: "assignDate", kind: kDate}, column{name: "dueDate", kind: kDate},
		column{name: "classSourcedId", ref: tClasses, required: true},
		column{name: "categorySourcedId", ref: tCategories},
		column{name: "gradingPeriodSourcedId", ref: tAcademicSessions},
		column{name: "resultValueMin", kind: kFloat}, column{name: "resultValueMax", kind: kFloat},
	),
	tResults: base(
		column{name: "lineItemSourcedId", ref: tLineItems, required: true},
		column{name: "studentSourcedId", ref: tUsers, required: true},
		column{name: "scoreStatus"},
		column{name: "score", kind: kFloat},
		column{name: "scoreDate", kind: kDate},
		column{name: "comment"},
	),
}

// tableColumns returns the columns of table in version v.
func tableColumns(table, v string) []column {
	var out []column
	for _, c := range columns[table] {
		if c.only == "" || c.only == v {
			out = append(out, c)
		}
	}
	return out
}

// Schema returns the Arrow schema of table in OneRoster version v (V11 or
// V12), or nil if the version has no such table.
func Schema(table, v string) *arrow.Schema {
	if table == tRoles && v != V12 {
		return nil
	}
	cols := tableColumns(table, v)
	if cols == nil {
		return nil
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.kind.arrow(), Nullable: i > 0}
	}
	return arrow.NewSchema(fields, nil)
}
