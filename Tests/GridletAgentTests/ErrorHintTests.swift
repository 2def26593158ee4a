import Glibc
@testable import GridletAgent
import Testing

/// Errors a user meets name the next step.
@Suite struct ErrorHintTests {
    @Test func modbusFailuresGetTheNextStep() {
        let timeout = "meter (unit 1 on rs485): read input registers 0+2: no answer within 500 ms (ETIMEDOUT)"
        #expect(ModbusHint.explained(timeout).hasPrefix(timeout + "; check the wiring (A/B swapped?)"))
        #expect(ModbusHint.forMessage("evse: connection refused (ECONNREFUSED)")?.contains("IP address and port") == true)
        #expect(ModbusHint.forMessage("exception 2: illegal data address")?.contains("check the profile and the address") == true)
        #expect(ModbusHint.explained("something else") == "something else")
    }

    @Test func queueOpenFailuresSayWhatToDo() {
        #expect(Agent.queueOpenHint(EWOULDBLOCK).contains("another gridlet runs with this state_dir"))
        #expect(Agent.queueOpenHint(EACCES).contains("writable"))
        #expect(Agent.queueOpenHint(ENOSPC).contains("queue.max_bytes"))
        #expect(Agent.queueOpenHint(EIO).contains("df -h"))
    }
}
