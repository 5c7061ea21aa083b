package layout

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// object is a JSON object that keeps its members in the order found, so
// that rewriting index.json or manifest.json changes only what an edit
// touches: unknown fields, their order and untouched entries stay as they
// were.
type object []member

type member struct {
	Key string
	Val json.RawMessage
}

func (o *object) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("not a JSON object")
	}
	*o = (*o)[:0]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*o = append(*o, member{key, v})
	}
	_, err = dec.Token()
	return err
}

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		buf.Write(k)
		buf.WriteByte(':')
		v := m.Val
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		if err := json.Compact(&buf, v); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// get decodes member key into v; it reports whether key is present.
func (o object) get(key string, v any) (bool, error) {
	for _, m := range o {
		if m.Key == key {
			return true, json.Unmarshal(m.Val, v)
		}
	}
	return false, nil
}

// set replaces member key, or appends it.
func (o *object) set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	for i, m := range *o {
		if m.Key == key {
			(*o)[i].Val = b
			return nil
		}
	}
	*o = append(*o, member{key, b})
	return nil
}

// del removes member key.
func (o *object) del(key string) {
	out := (*o)[:0]
	for _, m := range *o {
		if m.Key != key {
			out = append(out, m)
		}
	}
	*o = out
}

// str returns the string member key, "" when absent or not a string.
func (o object) str(key string) string {
	var s string
	if ok, err := o.get(key, &s); !ok || err != nil {
		return ""
	}
	return s
}

func (o object) clone() object {
	out := make(object, len(o))
	copy(out, o)
	return out
}
