package argocd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// health is what an Argo CD health script returns.
type health struct {
	Status  string
	Message string
}

// Argo CD's health status codes (gitops-engine pkg/health); any other status reads as Unknown.
var healthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// runHealthScript runs the Lua health check in file against obj as Argo CD runs a health check
// configured in argocd-cm (util/lua/lua.go in https://github.com/argoproj/argo-cd, VM.runLua and
// ExecuteHealthLua): a gopher-lua state without the standard libraries but for package, base and
// table (Argo CD adds a reduced os library, which these scripts do not use), a one-second limit,
// the object as a Lua table in the global obj, and the script's returned table read for status and
// message. A status Argo CD does not know is an error here, where Argo CD would show Unknown.
func runHealthScript(file string, obj *unstructured.Unstructured) (health, error) {
	script, err := os.ReadFile(file)
	if err != nil {
		return health{}, err
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	object, err := toJSONMap(obj)
	if err != nil {
		return health{}, err
	}
	l.SetGlobal("obj", luaValue(l, object))
	if err := l.DoString(string(script)); err != nil {
		return health{}, fmt.Errorf("%s: %w", file, err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("%s returned %s, Argo CD expects a table", file, l.Get(-1).Type())
	}
	status, statusOK := ret.RawGetString("status").(lua.LString)
	message := ret.RawGetString("message")
	if !statusOK || !healthStatuses[string(status)] {
		return health{}, fmt.Errorf("%s returned status %v, which Argo CD reads as Unknown", file, ret.RawGetString("status"))
	}
	if message.Type() != lua.LTString {
		return health{}, fmt.Errorf("%s returned message %v, not a string", file, message)
	}
	return health{Status: string(status), Message: message.String()}, nil
}

// toJSONMap is obj as the JSON decoder gives it, as in Argo CD's cache (numbers as float64).
func toJSONMap(obj *unstructured.Unstructured) (map[string]any, error) {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// luaValue converts a decoded JSON value to Lua the way Argo CD's decodeValue does: objects become
// tables with string keys, arrays tables with keys from 1.
func luaValue(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(luaValue(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), luaValue(l, item))
		}
		return t
	}
	return lua.LNil
}
