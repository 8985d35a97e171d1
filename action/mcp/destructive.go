package mcp

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// destructiveWords are the verbs that mark a tool as destructive when they
// appear as a word of its name. The heuristic is an opinion for policies
// to use or ignore (action.destructive); what a tool really does is known
// only to its server, whose destructiveHint annotation is a claim too.
var destructiveWords = map[string]bool{
	"delete": true, "drop": true, "remove": true, "rm": true, "destroy": true,
	"truncate": true, "reset": true, "wipe": true, "purge": true, "erase": true,
	"terminate": true, "uninstall": true, "flush": true, "prune": true, "revoke": true,
}

// destructiveTool reports whether a tool name contains a destructive verb
// as a word: drop_table, deleteRepository, db.purge-cache and
// HTTPDelete are destructive; undelete_file, dropdown_options and
// list_tables are not. Words are split at every character that is not a
// letter or digit and at case changes (camelCase, ACRONYMWord).
func destructiveTool(name string) bool {
	for _, w := range words(name) {
		if destructiveWords[w] {
			return true
		}
	}
	return false
}

// destructiveAction reports whether a tool that groups several actions is
// told to take a destructive one by an argument (GitHub's MCP server:
// actions_run_trigger {"method": "delete_workflow_run_logs"}; found by
// review).
func destructiveAction(args any) bool { return destructiveActionAt(args, 0) }

func destructiveActionAt(v any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		for name, e := range v {
			switch strings.ToLower(name) {
			case "method", "action", "operation", "op", "command", "mode":
				if s, ok := e.(string); ok && destructiveTool(s) {
					return true
				}
			}
			// Nested too: {"params": {"method": "delete_project_item"}}.
			if destructiveActionAt(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if destructiveActionAt(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// words splits an identifier into lower-case words.
func words(s string) []string {
	var out []string
	rs := []rune(s)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// fooBar → foo|Bar; HTTPDelete → HTTP|Delete.
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return out
}

// sqlArguments are the argument names under which database tools take
// their statement (Supabase's execute_sql takes "query"; others "sql",
// Neon's run_sql_transaction a list in "sqlStatements", its migrations
// "migrationSql"), compared in lower case.
var sqlArguments = map[string]bool{
	"sql": true, "query": true, "statement": true, "statements": true, "sqlstatements": true,
	"sql_statements": true, "migrationsql": true, "migration_sql": true, "queries": true,
	"sql_query": true, "sqlquery": true,
}

// sqlVerbs start an SQL statement: under an argument name a search tool
// also uses, text with a statement that starts with one is SQL.
var sqlVerbs = map[string]bool{
	"select": true, "insert": true, "update": true, "delete": true, "drop": true,
	"truncate": true, "alter": true, "create": true, "with": true, "merge": true,
	"grant": true, "revoke": true, "begin": true, "replace": true,
	// Statements that can lead a text whose later statements destroy
	// (noted by review: "SET search_path TO public; DROP TABLE users").
	"set": true, "explain": true, "do": true, "call": true, "execute": true,
	"exec": true, "copy": true, "use": true, "start": true, "commit": true,
	"show": true, "vacuum": true, "analyze": true, "rollback": true, "lock": true,
	"comment": true, "notify": true, "listen": true, "load": true, "import": true,
	"values": true, "pragma": true, "prepare": true, "table": true, "describe": true,
}

// destructiveSQL reports whether a tool's arguments hold SQL that drops,
// deletes, truncates, builds what it runs or updates every row
// (INCIDENTS 2, 3 and 8: agents dropping production tables through
// execute_sql-style tools), in a string argument (or a list of strings)
// named as SQL is; see destructiveSQLText. It is a coarse opinion, not a
// parser: policies that care should read action.arguments themselves.
func destructiveSQL(args any) bool {
	obj, ok := args.(map[string]any)
	if !ok {
		return false
	}
	for name, v := range obj {
		lower := strings.ToLower(name)
		if !sqlArguments[lower] {
			continue
		}
		var texts []string
		switch v := v.(type) {
		case string:
			texts = []string{v}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					texts = append(texts, s)
				}
			}
		}
		gated := lower == "query" || lower == "queries" || lower == "statement" || lower == "statements"
		for _, s := range texts {
			if destructiveSQLText(s, gated) {
				return true
			}
		}
	}
	return false
}

// destructiveSQLText reports whether SQL text drops, deletes, truncates,
// builds what it runs, or updates rows with no WHERE. Under an argument
// name a search tool also uses (gated), the text counts as SQL only when
// one of its statements starts with an SQL verb; under a name only SQL is
// passed in, always (found by review: "SHOW search_path; DROP TABLE t"
// was not SQL). Words inside string literals and comments do not count
// towards a WHERE.
func destructiveSQLText(s string, gated bool) bool {
	raw := sqlWords(s)
	readings := []string{sqlCode(s, true), sqlCode(s, false)}
	if gated {
		isSQL := len(raw) > 0 && sqlVerbs[raw[0]]
		for _, code := range readings {
			for st := range strings.SplitSeq(code, ";") {
				if ws := sqlWords(st); len(ws) > 0 && sqlVerbs[ws[0]] {
					isSQL = true
				}
			}
		}
		if !isSQL {
			return false
		}
	}
	for _, w := range raw {
		switch w {
		case "drop", "delete", "truncate", "dblink", "dblink_exec", "execute":
			return true
		}
	}
	// SQL that builds what it runs, or that a lexer here may read apart
	// from the server: dollar quotes, DO blocks.
	if strings.Contains(s, "$$") || dollarTag.MatchString(s) || len(raw) > 0 && raw[0] == "do" {
		return true
	}
	// An UPDATE with no WHERE overwrites every row, in either reading of
	// backslashes in strings (noted by review).
	for _, code := range readings {
		for st := range strings.SplitSeq(code, ";") {
			ws := sqlWords(st)
			if slices.Contains(ws, "update") && slices.Contains(ws, "set") && !slices.Contains(ws, "where") {
				return true
			}
		}
	}
	return false
}

var dollarTag = regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*\$`)

// sqlCode is s with its comments and string literals blanked: what is
// left is what the server runs as code, reading a backslash in a string
// as an escape (MySQL) or not (PostgreSQL, SQLite). MySQL's executable
// comments (/*! … */) are code.
func sqlCode(s string, backslash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexAny(s[i:], "\r\n")
			if j < 0 {
				return b.String()
			}
			i += j
			b.WriteByte(' ')
		case strings.HasPrefix(s[i:], "/*!"):
			i += 2
			b.WriteByte(' ')
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return b.String()
			}
			i += j + 3
			b.WriteByte(' ')
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(s) && s[j] != end {
				if backslash && s[j] == '\\' {
					j++
				}
				j++
			}
			i = j
			b.WriteString(" '' ")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sqlWords splits SQL into lower-case words; identifiers such as
// drop_log stay whole.
func sqlWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	})
}
