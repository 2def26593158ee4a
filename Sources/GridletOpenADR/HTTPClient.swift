import CCurl

/// One HTTP request as the VEN makes them: a GET, or a form/JSON POST.
public struct HTTPRequest: Sendable, Equatable {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }
    public var method: Method
    public var url: String
    public var headers: [String]
    public var body: [UInt8]?

    public init(_ method: Method = .get, _ url: String, headers: [String] = [], body: [UInt8]? = nil) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
    }

    /// The request line for logs and errors: method and URL, never a header (they carry the token).
    public var line: String { "\(method.rawValue) \(url)" }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]
    public var etag: String?
    public init(status: Int, body: [UInt8] = [], etag: String? = nil) { self.status = status; self.body = body; self.etag = etag }
}

/// Why a request got no HTTP answer. A struct over libcurl's code (unknown codes survive), with a
/// sentence that says what went wrong and libcurl's detail.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case resolve, connect, tls, timeout, tooLarge = "too_large", stopped, other }
    public var kind: Kind
    /// libcurl's CURLcode (0 for errors of our own).
    public var code: Int32
    public var detail: String

    public init(kind: Kind, code: Int32 = 0, detail: String) { self.kind = kind; self.code = code; self.detail = detail }

    init(curl code: CURLcode, detail: String) {
        let k: Kind
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: k = .resolve
        case CURLE_COULDNT_CONNECT: k = .connect
        case CURLE_OPERATION_TIMEDOUT: k = .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            k = .tls
        case CURLE_ABORTED_BY_CALLBACK: k = .stopped
        default: k = .other
        }
        let text = detail.isEmpty ? String(cString: gridlet_curl_easy_strerror(code)) : detail
        self.init(kind: k, code: Int32(bitPattern: code.rawValue), detail: text)
    }

    public var description: String {
        switch kind {
        case .resolve: return "cannot resolve the host name (\(detail))"
        case .connect: return "cannot connect (\(detail))"
        case .tls: return "TLS failed: \(detail); check openadr.ca_file and the server's certificate"
        case .timeout: return "no answer in time (\(detail))"
        case .tooLarge: return "answer too large (\(detail))"
        case .stopped: return "stopped"
        case .other: return detail
        }
    }
}

/// Performs requests; the VEN's thread owns it. Tests plug in a fake.
public protocol HTTPTransport: AnyObject {
    func perform(_ request: HTTPRequest) throws(HTTPError) -> HTTPResponse
}

/// Loads libcurl (dlopen, once; see CCurl) and runs its global init: call from the main thread
/// before any VEN thread exists. nil when ready, else why not.
@discardableResult
public func httpGlobalInit() -> String? {
    gridlet_curl_load().map { String(cString: $0) }
}

/// HTTP(S) over one libcurl easy handle, reused so polls keep their connection. Peer and host
/// verification are always on; only http and https; no redirects; a time limit per request; an
/// answer larger than `maxBodyBytes` is cut off with an error. Not thread safe: one owner.
public final class CurlHTTP: HTTPTransport {
    let handle: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>
    let sink: BodySink

    /// - Parameter shouldStop: polled about once a second during a transfer: true aborts it (a
    ///   clean stop does not wait for the request time limit).
    public init(caFile: String?, timeoutMs: Int64, maxBodyBytes: Int = 4 << 20,
                shouldStop: @escaping @Sendable () -> Bool = { false }) throws(HTTPError) {
        if let why = httpGlobalInit() { throw HTTPError(kind: .other, detail: why) }
        guard let h = gridlet_curl_easy_init() else { throw HTTPError(kind: .other, detail: "curl_easy_init failed") }
        handle = h
        errorBuffer = .allocate(capacity: gridlet_curl_error_size)
        errorBuffer.initialize(repeating: 0, count: gridlet_curl_error_size)
        sink = BodySink(limit: maxBodyBytes, shouldStop: shouldStop)
        var rc = CURLE_OK
        func set(_ r: CURLcode) { if rc == CURLE_OK { rc = r } }
        set(gridlet_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer))
        set(gridlet_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        set(gridlet_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1))
        set(gridlet_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2))
        set(gridlet_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(gridlet_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        set(gridlet_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(timeoutMs)))
        set(gridlet_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(min(timeoutMs, 10_000))))
        set(gridlet_curl_setopt_string(h, CURLOPT_ACCEPT_ENCODING, ""))   // whatever libcurl can decode (gzip)
        set(gridlet_curl_setopt_string(h, CURLOPT_USERAGENT, "gridlet-ven"))
        if let caFile { set(gridlet_curl_setopt_string(h, CURLOPT_CAINFO, caFile)) }
        set(gridlet_curl_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, onBody))
        set(gridlet_curl_setopt_pointer(h, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque()))
        set(gridlet_curl_setopt_progress_cb(h, onProgress))
        set(gridlet_curl_setopt_pointer(h, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(sink).toOpaque()))
        set(gridlet_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0))
        if rc != CURLE_OK {
            let e = HTTPError(curl: rc, detail: "")
            gridlet_curl_easy_cleanup(h)
            errorBuffer.deallocate()
            throw e
        }
    }

    deinit {
        gridlet_curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    public func perform(_ request: HTTPRequest) throws(HTTPError) -> HTTPResponse {
        sink.reset()
        errorBuffer[0] = 0
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        for h in request.headers { headers = gridlet_curl_slist_append(headers, h) }
        defer { gridlet_curl_slist_free_all(headers) }
        let h = handle
        var rc = gridlet_curl_setopt_string(h, CURLOPT_URL, request.url)
        if rc == CURLE_OK { rc = gridlet_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headers) }
        let body = request.body ?? []
        if rc == CURLE_OK {
            switch request.method {
            case .get:
                rc = gridlet_curl_setopt_long(h, CURLOPT_HTTPGET, 1)
            case .post:
                rc = gridlet_curl_setopt_long(h, CURLOPT_POST, 1)
                if rc == CURLE_OK { rc = gridlet_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count) }
            }
        }
        if rc == CURLE_OK, request.method == .post {
            // COPYPOSTFIELDS copies POSTFIELDSIZE bytes: the buffer need not outlive this call.
            var bytes = body
            if bytes.isEmpty { bytes = [0] }
            rc = bytes.withUnsafeMutableBytes { gridlet_curl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
        }
        if rc == CURLE_OK { rc = gridlet_curl_easy_perform(h) }
        if rc != CURLE_OK {
            if sink.overflowed { throw HTTPError(kind: .tooLarge, detail: "more than \(sink.limit) bytes from \(request.line)") }
            throw HTTPError(curl: rc, detail: String(cString: errorBuffer))
        }
        var status = 0
        _ = gridlet_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, body: sink.take(), etag: header("ETag"))
    }

    /// The last value of a response header, or nil.
    func header(_ name: String) -> String? {
        var out: UnsafeMutablePointer<curl_header>? = nil
        guard gridlet_curl_easy_header(handle, name, 0, gridlet_curlh_header, -1, &out) == CURLHE_OK, let v = out?.pointee.value else { return nil }
        return String(cString: v)
    }
}

/// Where libcurl's callbacks write: the body so far, and whether to stop.
/// `@unchecked Sendable`: only the thread running `curl_easy_perform` (the owner of the
/// `CurlHTTP`) touches `bytes` and `overflowed`, inside `perform` and its callbacks.
final class BodySink: @unchecked Sendable {
    let limit: Int
    let shouldStop: @Sendable () -> Bool
    var bytes: [UInt8] = []
    var overflowed = false

    init(limit: Int, shouldStop: @escaping @Sendable () -> Bool) { self.limit = limit; self.shouldStop = shouldStop }

    func reset() { bytes.removeAll(keepingCapacity: false); overflowed = false }

    func take() -> [UInt8] { defer { bytes = [] }; return bytes }
}

// C callbacks: capture nothing, defined outside any actor.
private let onBody: gridlet_curl_data_cb = { data, size, count, user in
    let sink = Unmanaged<BodySink>.fromOpaque(user!).takeUnretainedValue()
    let n = size * count
    guard sink.bytes.count + n <= sink.limit else { sink.overflowed = true; return 0 }
    if n > 0, let data { sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: n)) }
    return n
}

private let onProgress: gridlet_curl_progress_cb = { user, _, _, _, _ in
    Unmanaged<BodySink>.fromOpaque(user!).takeUnretainedValue().shouldStop() ? 1 : 0
}
