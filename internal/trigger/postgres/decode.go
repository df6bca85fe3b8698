package postgres

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// Layouts of timestamps in PostgreSQL's ISO DateStyle (the replication
// connection sets it). Fractional seconds, when present, are accepted by
// time.Parse without being in the layout.
const (
	pgTimestamptz = "2006-01-02 15:04:05Z07"
	pgTimestamp   = "2006-01-02 15:04:05"
	// isoLocal is RFC 3339 without an offset, for timestamps without
	// time zone.
	isoLocal = "2006-01-02T15:04:05.999999999"
)

// Time zone offsets PostgreSQL may print after a timestamp: "+00",
// "+05:30", "+05:30:15".
var tzLayouts = []string{pgTimestamptz, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05Z07:00:00"}

// jsonNumber matches a JSON number (numeric's text form is one, unless it
// is NaN or an infinity).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// keyFlag marks a relation column that is part of the replica identity.
const keyFlag = 1

// decodeTuple turns a tuple of relation rel into column name -> value.
// keyOnly keeps the key columns only (in an old key tuple the others are
// null). prev supplies the values of unchanged TOASTed columns, which
// PostgreSQL does not send again (a column missing from prev is left
// out). The values do not alias tuple's memory.
func decodeTuple(rel *pglogrepl.RelationMessage, tuple *pglogrepl.TupleData, keyOnly bool, prev map[string]any) map[string]any {
	if tuple == nil {
		return nil
	}
	row := make(map[string]any, len(tuple.Columns))
	for i, col := range tuple.Columns {
		if i >= len(rel.Columns) {
			break
		}
		rc := rel.Columns[i]
		if keyOnly && rc.Flags&keyFlag == 0 {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			row[rc.Name] = nil
		case pglogrepl.TupleDataTypeToast:
			if v, ok := prev[rc.Name]; ok {
				row[rc.Name] = v
			}
		default:
			row[rc.Name] = decodeValue(rc.DataType, col.Data)
		}
	}
	return row
}

// decodeValue decodes a column value in PostgreSQL's text form by its
// type (see the package documentation). Whatever does not parse is kept
// as text.
func decodeValue(oid uint32, data []byte) any {
	s := string(data)
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	case pgtype.NumericOID:
		if jsonNumber.MatchString(s) {
			return json.Number(s)
		}
	case pgtype.BoolOID:
		switch s {
		case "t":
			return true
		case "f":
			return false
		}
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(data) {
			return json.RawMessage(bytes.Clone(data))
		}
	case pgtype.TimestamptzOID:
		for _, layout := range tzLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format(time.RFC3339Nano)
			}
		}
	case pgtype.TimestampOID:
		if t, err := time.Parse(pgTimestamp, s); err == nil {
			return t.Format(isoLocal)
		}
	}
	return s
}
