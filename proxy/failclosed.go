package proxy

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/countersign/countersign/policy"
)

// recoverDecider turns a panic anywhere in a Decide call into a denial with
// a policy error (SPEC 10.1: a panic in evaluation denies, is audited, and
// the proxy stays up). The engine recovers panics inside OPA itself; this
// covers the rest of evaluation (input conversion, the decision cache,
// interpreting the result) and any other Decider. A panic denies whatever
// policy.on_error says: the engine did not get to apply it.
type recoverDecider struct {
	d      Decider
	logger *zap.Logger
}

func (r recoverDecider) Decide(ctx context.Context, in *policy.Input) (d policy.Decision) {
	defer func() {
		if v := recover(); v != nil {
			r.logger.Error("policy evaluation panicked; denying", zap.String("panic", fmt.Sprint(v)), zap.StackSkip("stack", 1))
			d = policy.Decision{
				Verdict: policy.VerdictDeny,
				Err:     fmt.Errorf("policy evaluation panicked: %v", v),
				Reasons: []policy.Reason{{ID: "POLICY-ERROR", Message: "policy error: the policy could not decide this request; ask the policy owner to check the countersign log"}},
			}
		}
	}()
	return r.d.Decide(ctx, in)
}
