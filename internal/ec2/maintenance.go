package ec2

import (
	"fmt"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("ModifyInstanceMaintenanceOptions", modifyInstanceMaintenanceOptions)
}

// modifyInstanceMaintenanceOptions sets an instance's AutoRecovery:
// default (restarted on another host of its zone when its host dies, if
// the cloud runs with instance recovery) or disabled. The controller's
// recovery reads it.
func modifyInstanceMaintenanceOptions(c *call) (*node, error) {
	id, err := c.requiredID("InstanceId", vpc.KindInstance)
	if err != nil {
		return nil, err
	}
	mode := c.p.str("AutoRecovery")
	switch mode {
	case vpc.AutoRecoveryDefault, vpc.AutoRecoveryDisabled:
	case "":
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter AutoRecovery"}
	default:
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter AutoRecovery is invalid. Valid values: default, disabled.", mode)}
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		i, err := st.Instance(c.acct, id)
		if err != nil {
			return err
		}
		if i.State == vpc.InstanceTerminated || i.State == vpc.InstanceShuttingDown {
			return incorrectState(i.ID, i.State, "modified")
		}
		if autoRecovery(i) == mode {
			return nil
		}
		i = clone(i)
		i.AutoRecovery = mode
		return tx.Put(i.ID, i)
	})
	if err != nil {
		return nil, err
	}
	return newNode("").s("instanceId", id).s("autoRecovery", mode), nil
}

// autoRecovery is the instance's AutoRecovery as AWS shows it.
func autoRecovery(i *vpc.Instance) string {
	if i.AutoRecovery == "" {
		return vpc.AutoRecoveryDefault
	}
	return i.AutoRecovery
}
