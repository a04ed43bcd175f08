package lockfile

import (
	"reflect"
	"sort"
	"strings"
)

// unknownKeys walks the generic decoding of a lockfile against the Lock
// type and calls report once for every key no field takes, with the key's
// path (array indices included, for its line) and its dotted name (without
// them, for the message). BurntSushi's MetaData.Undecoded drops the indices
// and repeats a key under every entry of the arrays above it.
func unknownKeys(doc map[string]any, report func(path []any, name string)) {
	walkUnknown(doc, reflect.TypeOf(Lock{}), nil, nil, report)
}

func walkUnknown(table map[string]any, t reflect.Type, path []any, names []string, report func([]any, string)) {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := append(append([]any{}, path...), k)
		n := append(append([]string{}, names...), k)
		ft, ok := fields[k]
		if !ok {
			report(p, strings.Join(n, "."))
			continue
		}
		if ft.Kind() != reflect.Slice || ft.Elem().Kind() != reflect.Struct {
			continue
		}
		var entries []map[string]any
		switch v := table[k].(type) {
		case []map[string]any:
			entries = v
		case []any:
			for _, e := range v {
				m, _ := e.(map[string]any)
				entries = append(entries, m)
			}
		}
		for i, e := range entries {
			if e != nil {
				walkUnknown(e, ft.Elem(), append(append([]any{}, p...), i), n, report)
			}
		}
	}
}
