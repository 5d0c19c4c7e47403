package streamtest

import "github.com/rifflestream/riffle/topology"

// defaultStores returns how tasks open stores when the test does not say: none yet, so a
// topology with stores needs the Stores option.
func defaultStores(*topology.Plan) topology.StoreOpener { return nil }
