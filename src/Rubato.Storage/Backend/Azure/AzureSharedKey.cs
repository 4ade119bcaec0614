using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Rubato.Storage.Backend.Azure;

/// <summary>
/// Azure Storage "Shared Key" request signing (the Blob service's 2009-09-19+ scheme): an HMAC-SHA256, keyed with the
/// account key, over the verb, twelve standard headers, the canonicalized <c>x-ms-*</c> headers and the
/// canonicalized resource, sent as <c>Authorization: SharedKey ACCOUNT:SIGNATURE</c>.
/// </summary>
/// <remarks>Thread-safe: each call makes its own HMAC. Call after every header and the content are set.</remarks>
public sealed class AzureSharedKey
{
    private readonly string _account;
    private readonly byte[] _key;

    public AzureSharedKey(string accountName, string base64Key)
    {
        ArgumentException.ThrowIfNullOrEmpty(accountName);
        ArgumentException.ThrowIfNullOrEmpty(base64Key);
        _account = accountName;
        try
        {
            _key = Convert.FromBase64String(base64Key);
        }
        catch (FormatException e)
        {
            throw new ArgumentException("the Azure storage account key is not valid base64", nameof(base64Key), e);
        }
    }

    /// <summary>Adds <c>x-ms-date</c> (when missing) and the <c>Authorization</c> header.</summary>
    public void Sign(HttpRequestMessage request, DateTimeOffset now)
    {
        if (!request.Headers.Contains("x-ms-date"))
        {
            request.Headers.TryAddWithoutValidation("x-ms-date", now.UtcDateTime.ToString("R", CultureInfo.InvariantCulture));
        }

        string toSign = StringToSign(request);
        using var hmac = new HMACSHA256(_key);
        string signature = Convert.ToBase64String(hmac.ComputeHash(System.Text.Encoding.UTF8.GetBytes(toSign)));
        request.Headers.Authorization = new AuthenticationHeaderValue("SharedKey", _account + ":" + signature);
    }

    /// <summary>The exact text that is signed; public for protocol tests.</summary>
    public string StringToSign(HttpRequestMessage request)
    {
        var content = request.Content?.Headers;
        long? length = content?.ContentLength;
        var sb = new StringBuilder(256);
        sb.Append(request.Method.Method).Append('\n');
        sb.Append(Join(content?.ContentEncoding)).Append('\n');
        sb.Append(Join(content?.ContentLanguage)).Append('\n');
        sb.Append(length is null or 0 ? string.Empty : length.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(content?.ContentMD5 is { } md5 ? Convert.ToBase64String(md5) : string.Empty).Append('\n');
        sb.Append(content?.ContentType?.ToString() ?? string.Empty).Append('\n');
        sb.Append('\n'); // Date: x-ms-date is used instead.
        sb.Append(Header(request, "If-Modified-Since")).Append('\n');
        sb.Append(Header(request, "If-Match")).Append('\n');
        sb.Append(Header(request, "If-None-Match")).Append('\n');
        sb.Append(Header(request, "If-Unmodified-Since")).Append('\n');
        sb.Append(Header(request, "Range")).Append('\n');

        var msHeaders = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var h in request.Headers.Concat(content ?? Enumerable.Empty<KeyValuePair<string, IEnumerable<string>>>()))
        {
            if (h.Key.StartsWith("x-ms-", StringComparison.OrdinalIgnoreCase))
            {
                msHeaders[h.Key.ToLowerInvariant()] = string.Join(',', h.Value.Select(v => v.Trim()));
            }
        }

        foreach (var (name, value) in msHeaders)
        {
            sb.Append(name).Append(':').Append(value).Append('\n');
        }

        var uri = request.RequestUri ?? throw new ArgumentException("request has no URI");
        sb.Append('/').Append(_account).Append(uri.AbsolutePath);
        var query = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string name = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]).ToLowerInvariant();
            string value = eq < 0 ? string.Empty : Uri.UnescapeDataString(pair[(eq + 1)..]);
            (query.TryGetValue(name, out var values) ? values : query[name] = []).Add(value);
        }

        foreach (var (name, values) in query)
        {
            values.Sort(StringComparer.Ordinal);
            sb.Append('\n').Append(name).Append(':').Append(string.Join(',', values));
        }

        return sb.ToString();
    }

    private static string Join(ICollection<string>? values) => values is null || values.Count == 0 ? string.Empty : string.Join(',', values);

    private static string Header(HttpRequestMessage request, string name) =>
        request.Headers.TryGetValues(name, out var v) ? string.Join(',', v) : string.Empty;
}
