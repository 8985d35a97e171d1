package graphql

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Limits on the work one document may cause. The body is already capped by
// inspect.body_limit; these keep a small hostile document from costing much
// more than its size.
const (
	// maxDocumentBytes bounds the query text handed to the parser.
	maxDocumentBytes = 1 << 20
	// maxDepth bounds nesting of selection sets, lists and objects (the
	// parser recurses per level); real documents nest a few dozen levels.
	maxDepth = 128
	// maxTokens bounds the parser's token count and so the size of the AST.
	maxTokens = 50000
	// maxExpansions bounds the top-level fragment spreads followed per
	// operation: spreads can fan out exponentially.
	maxExpansions = 10000
)

var (
	errTooLarge   = errors.New("the GraphQL document exceeds the size limit")
	errTooLong    = errors.New("the GraphQL document has more tokens than the limit")
	errTooDeep    = errors.New("the GraphQL document nests too deeply")
	errParse      = errors.New("the GraphQL document does not parse")
	errNoOp       = errors.New("the GraphQL document has no operation")
	errExpansions = errors.New("the GraphQL document spreads fragments too many times")
	// errDuplicateName is for operationName naming two operations.
	errDuplicateName = errors.New("the GraphQL document has more than one operation with the name operationName gives, and servers differ on which one they run; give each operation its own name")
)

// operation is one operation definition of a document, with the top-level
// fields it selects once top-level fragments are expanded.
type operation struct {
	Type   string // query, mutation, subscription
	Name   string // as written in the document; may be empty or lie
	Fields []*ast.Field
	def    *ast.OperationDefinition
}

// parseDocument parses query and returns its operations. Errors never carry
// document text, which may hold secrets.
func parseDocument(query string) ([]operation, error) {
	if len(query) > maxDocumentBytes {
		return nil, errTooLarge
	}
	if depth(query) > maxDepth {
		return nil, errTooDeep
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, maxTokens)
	if err != nil {
		// Only the position: the parser's message quotes the document.
		var ge *gqlerror.Error
		if errors.As(err, &ge) && strings.HasPrefix(ge.Message, "exceeded token limit") {
			return nil, errTooLong
		}
		if errors.As(err, &ge) && len(ge.Locations) > 0 {
			return nil, fmt.Errorf("%w (line %d, column %d)", errParse, ge.Locations[0].Line, ge.Locations[0].Column)
		}
		return nil, errParse
	}
	if len(doc.Operations) == 0 {
		return nil, errNoOp
	}
	frags := map[string][]*ast.FragmentDefinition{}
	for _, f := range doc.Fragments {
		frags[f.Name] = append(frags[f.Name], f)
	}
	ops := make([]operation, 0, len(doc.Operations))
	for _, def := range doc.Operations {
		t := string(def.Operation)
		if t == "" {
			t = "query"
		}
		x := expander{frags: frags, budget: maxExpansions, active: map[string]bool{}}
		x.walk(def.SelectionSet)
		if x.budget < 0 {
			return nil, errExpansions
		}
		ops = append(ops, operation{Type: t, Name: def.Name, Fields: x.fields, def: def})
	}
	return ops, nil
}

// expander collects the fields an operation selects at its top level,
// looking through inline fragments and fragment spreads: a mutation can hide
// volumeDelete in `mutation { ...F } fragment F on Mutation { volumeDelete }`.
type expander struct {
	frags  map[string][]*ast.FragmentDefinition
	budget int
	active map[string]bool // fragments being expanded, to stop cycles
	fields []*ast.Field
}

func (x *expander) walk(ss ast.SelectionSet) {
	for _, s := range ss {
		x.budget--
		if x.budget < 0 {
			return
		}
		switch s := s.(type) {
		case *ast.Field:
			x.fields = append(x.fields, s)
		case *ast.InlineFragment:
			x.walk(s.SelectionSet)
		case *ast.FragmentSpread:
			if x.active[s.Name] {
				continue
			}
			x.active[s.Name] = true
			for _, f := range x.frags[s.Name] {
				x.walk(f.SelectionSet)
			}
			delete(x.active, s.Name)
		}
	}
}

// depth returns the deepest nesting of {, [ and ( in a GraphQL document,
// skipping strings, block strings and comments. It is a linear pre-check so
// the recursive parser never sees a document deeper than maxDepth.
func depth(doc string) int {
	d, deepest := 0, 0
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '#':
			for i < len(doc) && doc[i] != '\n' && doc[i] != '\r' {
				i++
			}
		case '"':
			if strings.HasPrefix(doc[i:], `"""`) {
				end := strings.Index(doc[i+3:], `"""`)
				for end >= 0 && escapedBlockQuote(doc, i+3+end) {
					next := strings.Index(doc[i+3+end+1:], `"""`)
					if next < 0 {
						end = -1
						break
					}
					end += 1 + next
				}
				if end < 0 {
					return d
				}
				i += 3 + end + 2
				continue
			}
			for i++; i < len(doc) && doc[i] != '"' && doc[i] != '\n'; i++ {
				if doc[i] == '\\' {
					i++
				}
			}
		case '{', '[', '(':
			d++
			deepest = max(deepest, d)
		case '}', ']', ')':
			if d > 0 {
				d--
			}
		}
	}
	return deepest
}

// escapedBlockQuote reports whether the """ at i is escaped (\""").
func escapedBlockQuote(doc string, i int) bool {
	return i > 0 && doc[i-1] == '\\'
}

// destructiveWords are verbs that, as the first or last word of a mutation
// field name, mean data goes away: deleteRepository, volumeDelete,
// delete_users (Hasura), purgeCache, resetDatabase.
var destructiveWords = map[string]bool{
	"delete": true, "remove": true, "destroy": true, "drop": true, "purge": true,
	"wipe": true, "reset": true, "erase": true, "truncate": true,
}

// destructiveField reports whether a mutation field name reads as
// destructive.
func destructiveField(name string) bool {
	words := splitWords(name)
	if len(words) == 0 {
		return false
	}
	return destructiveWords[words[0]] || destructiveWords[words[len(words)-1]]
}

// splitWords splits camelCase, PascalCase and snake_case names into lower
// case words: "volumeDelete" → volume, delete; "delete_users_by_pk" →
// delete, users, by, pk; "HTMLDelete" → html, delete.
func splitWords(name string) []string {
	var words []string
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			words = append(words, strings.ToLower(name[start:end]))
		}
		start = -1
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-':
			flush(i)
		case isUpper(c):
			// A new word starts at an upper-case letter that follows a
			// lower-case one or digit, or that begins a capitalised word after
			// an acronym (the D in HTMLDelete).
			if start >= 0 && (!isUpper(name[i-1]) || (i+1 < len(name) && isLower(name[i+1]))) {
				flush(i)
			}
			if start < 0 {
				start = i
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(name))
	return words
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// argumentValues returns a field's arguments as JSON-shaped values, with
// variables replaced by the request's values (or their declared defaults),
// so a policy sees `volumeId` whether it was inlined or passed as $id.
func argumentValues(f *ast.Field, def *ast.OperationDefinition, vars map[string]any) map[string]any {
	if len(f.Arguments) == 0 {
		return nil
	}
	out := make(map[string]any, len(f.Arguments))
	for _, a := range f.Arguments {
		out[a.Name] = literal(a.Value, def, vars)
	}
	return out
}

func literal(v *ast.Value, def *ast.OperationDefinition, vars map[string]any) any {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case ast.Variable:
		if val, ok := vars[v.Raw]; ok {
			return val
		}
		if def != nil {
			if vd := def.VariableDefinitions.ForName(v.Raw); vd != nil && vd.DefaultValue != nil {
				return literal(vd.DefaultValue, nil, nil)
			}
		}
		return nil
	case ast.IntValue, ast.FloatValue:
		return json.Number(v.Raw)
	case ast.StringValue, ast.BlockValue, ast.EnumValue:
		return v.Raw
	case ast.BooleanValue:
		return v.Raw == "true"
	case ast.ListValue:
		out := make([]any, 0, len(v.Children))
		for _, c := range v.Children {
			out = append(out, literal(c.Value, def, vars))
		}
		return out
	case ast.ObjectValue:
		out := make(map[string]any, len(v.Children))
		for _, c := range v.Children {
			out[c.Name] = literal(c.Value, def, vars)
		}
		return out
	}
	return nil
}
