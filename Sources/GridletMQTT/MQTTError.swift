import CMosquitto

/// A libmosquitto failure: the raw `MOSQ_ERR_*` code (unknown codes survive), what was being
/// done, and for `MOSQ_ERR_ERRNO` the errno.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int32
    public var operation: String
    public var errno: Int32

    public init(code: Int32, operation: String, errno: Int32 = 0) {
        self.code = code; self.operation = operation; self.errno = errno
    }

    public var description: String {
        var text = "\(operation): \(MQTTError.message(code)) (MOSQ_ERR \(code))"
        if code == Int32(MOSQ_ERR_ERRNO.rawValue), errno != 0 {
            text += " (\(String(cString: strerror(errno))))"
        }
        return text
    }

    /// libmosquitto's messages are static strings, safe from any thread.
    public static func message(_ code: Int32) -> String {
        String(cString: mosquitto_strerror(code))
    }

    /// Reason for a CONNACK refusal or a disconnect, v3 and v5 codes.
    public static func connackMessage(_ rc: Int32) -> String {
        if rc == 0 { return "accepted" }
        return String(cString: mosquitto_reason_string(rc))
    }
}

@inline(__always) func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(MQTTError) {
    if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
        let e = Glibc.errno
        throw MQTTError(code: rc, operation: operation(), errno: e)
    }
}

import Glibc
