package ui

import (
	"errors"
	"reflect"
	"time"
)

// problem is the part of a management-API error the UI words for people.
type problem struct {
	Status     int
	Code       string
	Title      string
	Detail     string
	RetryAfter time.Duration
}

// problemOf finds an API problem (a struct error with a string Code field, such
// as *devices.APIError) in err's chain.
func problemOf(err error) (problem, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				continue
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			continue
		}
		code := v.FieldByName("Code")
		if !code.IsValid() || code.Kind() != reflect.String || code.String() == "" {
			continue
		}
		p := problem{Code: code.String()}
		if f := v.FieldByName("Status"); f.IsValid() && f.CanInt() {
			p.Status = int(f.Int())
		}
		if f := v.FieldByName("Title"); f.IsValid() && f.Kind() == reflect.String {
			p.Title = f.String()
		}
		if f := v.FieldByName("Detail"); f.IsValid() && f.Kind() == reflect.String {
			p.Detail = f.String()
		}
		if f := v.FieldByName("RetryAfter"); f.IsValid() && f.CanInt() {
			p.RetryAfter = time.Duration(f.Int())
		}
		return p, true
	}
	return problem{}, false
}
