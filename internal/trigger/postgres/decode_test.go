package postgres_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gustfaas/gust/internal/trigger/postgres"
)

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name string
		oid  uint32
		text string
		want any
	}{
		{"int2", pgtype.Int2OID, "-7", int64(-7)},
		{"int4", pgtype.Int4OID, "42", int64(42)},
		{"int8", pgtype.Int8OID, "9223372036854775807", int64(9223372036854775807)},
		{"oid", pgtype.OIDOID, "16384", int64(16384)},
		{"float8", pgtype.Float8OID, "1.5", 1.5},
		{"float4", pgtype.Float4OID, "-0.25", -0.25},
		{"float NaN", pgtype.Float8OID, "NaN", "NaN"},
		{"float infinity", pgtype.Float8OID, "Infinity", "Infinity"},
		{"numeric", pgtype.NumericOID, "12345678901234567890.123456789", json.Number("12345678901234567890.123456789")},
		{"numeric NaN", pgtype.NumericOID, "NaN", "NaN"},
		{"bool true", pgtype.BoolOID, "t", true},
		{"bool false", pgtype.BoolOID, "f", false},
		{"text", pgtype.TextOID, "héllo", "héllo"},
		{"jsonb", pgtype.JSONBOID, `{"a": [1, 2]}`, json.RawMessage(`{"a": [1, 2]}`)},
		{"json", pgtype.JSONOID, `"s"`, json.RawMessage(`"s"`)},
		{"timestamptz", pgtype.TimestamptzOID, "2024-05-01 12:34:56.789+00", "2024-05-01T12:34:56.789Z"},
		{"timestamptz offset", pgtype.TimestamptzOID, "2024-05-01 12:34:56+05:30", "2024-05-01T07:04:56Z"},
		{"timestamptz infinity", pgtype.TimestamptzOID, "infinity", "infinity"},
		{"timestamptz BC", pgtype.TimestamptzOID, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"},
		{"timestamp", pgtype.TimestampOID, "2024-05-01 12:34:56.5", "2024-05-01T12:34:56.5"},
		{"date", pgtype.DateOID, "2024-05-01", "2024-05-01"},
		{"uuid", pgtype.UUIDOID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"array", pgtype.Int4ArrayOID, "{1,2,3}", "{1,2,3}"},
		{"int that does not parse", pgtype.Int4OID, "x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postgres.DecodeValue(tt.oid, []byte(tt.text))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeValue(%d, %q) mismatch (-want +got):\n%s", tt.oid, tt.text, diff)
			}
		})
	}
}

// FuzzDecodeValue checks that any text of any common type decodes to a
// value that encodes as JSON.
func FuzzDecodeValue(f *testing.F) {
	for _, seed := range []struct {
		oid  uint32
		text string
	}{
		{pgtype.Int8OID, "1"}, {pgtype.Float8OID, "NaN"}, {pgtype.NumericOID, "-1.5"}, {pgtype.JSONBOID, "{}"},
		{pgtype.TimestamptzOID, "2024-05-01 12:34:56+00"}, {pgtype.TimestampOID, "2024-05-01 12:34:56"}, {pgtype.BoolOID, "t"},
	} {
		f.Add(seed.oid, []byte(seed.text))
	}
	f.Fuzz(func(t *testing.T, oid uint32, data []byte) {
		v := postgres.DecodeValue(oid, data)
		if _, err := json.Marshal(v); err != nil {
			t.Errorf("decodeValue(%d, %q) = %#v, which does not encode as JSON: %v", oid, data, v, err)
		}
	})
}
