package api

import (
	"errors"
	"net/http"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// events answers POST /v1/events: one envelope or an array of up to MaxEventBatch, each answered with a
// result (accepted, duplicate, conflict, or an error code) only after the accepted ones are durable.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	body, freeMemory, ok := s.readBody(w, r, MaxEventBatchBody)
	if !ok {
		return
	}
	defer freeMemory()
	release, ok := s.bodies.admit(r, len(body))
	if !ok {
		return // the client went away while its body waited
	}
	defer release()
	subs, single, err := telemetry.ParseSubmissions(body, MaxEventBatch)
	if err != nil {
		code := string(ledger.CodeMalformed)
		if errors.Is(err, telemetry.ErrTooMany) {
			code = CodeTooLarge
		}
		writeErr(w, code, err.Error())
		return
	}
	if !take(w, r, s.budget.Events, len(subs), "records") {
		return
	}
	results := s.ingest.Ingest(r.Context(), subs)
	if single {
		writeJSON(w, http.StatusOK, results[0])
		return
	}
	writeJSON(w, http.StatusOK, results)
}

func (s *Server) signals(w http.ResponseWriter, r *http.Request) {
	cat := s.cat
	out := make([]SignalInfo, len(cat.Signals))
	for i := range cat.Signals {
		sg := &cat.Signals[i]
		out[i] = SignalInfo{Name: sg.Name, Type: sg.Type, VSSType: sg.VSSType, VSSPath: sg.VSSPath, Unit: sg.Unit, Permission: sg.Permission}
		if sg.Kind == telemetry.KindNumber && sg.Min > -1e300 {
			out[i].Min, out[i].Max = &sg.Min, &sg.Max
		}
	}
	writeJSON(w, http.StatusOK, out)
}
