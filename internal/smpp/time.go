package smpp

import (
	"fmt"
	"strconv"
	"time"
)

// FormatRelative encodes d as an SMPP relative time (§7.1.1.2),
// "YYMMDDhhmmss000R", as used in validity_period. Years and months count
// 365 and 30 days, which matters only beyond a month.
func FormatRelative(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	y := s / (365 * 86400)
	s %= 365 * 86400
	mo := s / (30 * 86400)
	s %= 30 * 86400
	dd := s / 86400
	s %= 86400
	if y > 99 {
		y, mo, dd, s = 99, 11, 29, 86399
	}
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d000R", y, mo, dd, s/3600, s/60%60, s%60)
}

// FormatAbsolute encodes t as an SMPP absolute time,
// "YYMMDDhhmmsstnn+", in UTC.
func FormatAbsolute(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d%d00+", t.Year()%100, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e8)
}

// ParseTime decodes an absolute or relative SMPP time; a relative time
// counts from now. An empty string gives the zero time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) != 16 {
		return time.Time{}, fmt.Errorf("smpp: time %q: want 16 characters", s)
	}
	var f [7]int
	for i := range 6 {
		v, err := strconv.Atoi(s[2*i : 2*i+2])
		if err != nil || v < 0 {
			return time.Time{}, fmt.Errorf("smpp: time %q: bad digits", s)
		}
		f[i] = v
	}
	tenth, err1 := strconv.Atoi(s[12:13])
	nn, err2 := strconv.Atoi(s[13:15])
	if err1 != nil || err2 != nil || nn < 0 || nn > 48 {
		return time.Time{}, fmt.Errorf("smpp: time %q: bad digits", s)
	}
	switch s[15] {
	case 'R':
		d := time.Duration(f[0])*365*24*time.Hour + time.Duration(f[1])*30*24*time.Hour +
			time.Duration(f[2])*24*time.Hour + time.Duration(f[3])*time.Hour +
			time.Duration(f[4])*time.Minute + time.Duration(f[5])*time.Second
		return now.Add(d), nil
	case '+', '-':
		if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59 {
			return time.Time{}, fmt.Errorf("smpp: time %q: field out of range", s)
		}
		off := nn * 15 * 60
		if s[15] == '-' {
			off = -off
		}
		loc := time.FixedZone("", off)
		return time.Date(2000+f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], tenth*1e8, loc), nil
	}
	return time.Time{}, fmt.Errorf("smpp: time %q: want R, + or - at the end", s)
}
