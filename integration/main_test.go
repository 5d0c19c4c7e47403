package integration

import (
	"os"
	"testing"

	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
