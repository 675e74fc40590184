#include <Poco/URI.h>

#include <algorithm>

#include "config_reader.h"

namespace collectord::config_detail {

// "webhook.NAME" for each [webhook.NAME]: their keys are checked by readWebhookEndpoint.
std::set<std::string> webhookSections(IniReader& r) {
  std::set<std::string> sections;
  for (const std::string& name : r.children("webhook")) {
    sections.insert("webhook." + Poco::toLower(name));
  }
  return sections;
}

// The comma list of webhook event names in `text`; "*" stands for all of them.
unsigned parseWebhookEvents(IniReader& r, const std::string& key, const std::string& text) {
  unsigned events = 0;
  std::istringstream list(text);
  std::string name;
  bool named = false;
  while (std::getline(list, name, ',')) {
    name = Poco::trim(name);
    if (name.empty()) continue;
    named = true;
    if (name == "*") {
      events |= (1u << kWebhookEventTypeCount) - 1;
    } else if (const auto type = parseWebhookEventType(name)) {
      events |= 1u << static_cast<int>(*type);
    } else {
      std::string known;
      for (int i = 0; i < kWebhookEventTypeCount; ++i) {
        known += std::string(toString(static_cast<WebhookEventType>(i))) + ", ";
      }
      r.problem(key, "'" + name + "' is not a webhook event (" + known + "or * for all)");
    }
  }
  if (!named) r.problem(key, "names no event");
  return events;
}

// [webhook.NAME]: one endpoint.
std::optional<WebhookEndpoint> readWebhookEndpoint(IniReader& r, const std::string& name,
                                                   std::chrono::milliseconds default_timeout) {
  const std::string section = "webhook." + name;
  if (r.hasValue(section)) {
    r.problem(section,
              "endpoints go in sections of their own: [webhook.NAME] with url, secret and events");
    return std::nullopt;
  }
  if (!isValidCollectorName(name)) {
    r.problem(section, "'" + name +
                           "' is not a valid endpoint name (letters, digits, '-' and '_', "
                           "starting with a letter or digit)");
    return std::nullopt;
  }
  static const std::set<std::string> kKeys = {"url", "secret", "events", "timeout", "ca_file"};
  for (const std::string& key : r.children(section)) {
    const auto nested = r.children(section + "." + key);
    if (!kKeys.count(Poco::toLower(key))) {
      r.problem(section + "." + key, "unknown key");
    } else if (!nested.empty()) {
      r.problem(section + "." + key + "." + nested.front(), "unknown key");
    }
  }
  WebhookEndpoint e;
  e.name = name;
  std::string scheme;
  if (const auto url = r.get(section + ".url")) {
    e.url = *url;
    try {
      const Poco::URI uri(*url);
      scheme = Poco::toLower(uri.getScheme());
      if (scheme != "http" && scheme != "https") {
        r.problem(section + ".url", "'" + *url + "' is not an http:// or https:// URL");
      } else if (uri.getHost().empty()) {
        r.problem(section + ".url", "'" + *url + "' names no host");
      } else if (!uri.getUserInfo().empty()) {
        r.problem(section + ".url",
                  "credentials in the URL are not sent; receivers authenticate collectord by "
                  "the signature made with `secret`");
      }
    } catch (const Poco::SyntaxException& ex) {
      r.problem(section + ".url", "'" + *url + "' is not a URL: " + ex.message());
    }
  } else {
    r.problem(section + ".url", "is required");
  }
  if (const auto secret = r.get(section + ".secret")) {
    e.secret = *secret;
    std::string error;
    if (secret->rfind("@file:", 0) == 0 && !fs::path(secret->substr(6)).is_absolute()) {
      r.problem(section + ".secret", "@file: needs an absolute path");
    } else if (!resolveWebhookSecret(*secret, error)) {
      r.problem(section + ".secret", error);
    }
  } else {
    r.problem(section + ".secret", "is required: receivers check the signature made with it");
  }
  if (const auto events = r.get(section + ".events")) {
    e.events = parseWebhookEvents(r, section + ".events", *events);
  } else {
    r.problem(section + ".events",
              "is required: a comma list of batch.completed, batch.failed, batch.cancelled, "
              "job.completed, job.failed, job.cancelled, or * for all");
  }
  e.timeout = r.getDuration(section + ".timeout").value_or(default_timeout);
  e.ca_file = r.getPath(section + ".ca_file");
  requireFile(r, section + ".ca_file", e.ca_file);
  if (!e.ca_file.empty() && scheme == "http") {
    r.problem(section + ".ca_file", "applies to https:// URLs only");
  }
  return e;
}

// [webhooks] and every [webhook.NAME].
void readWebhooks(IniReader& r, WebhookSettings& w) {
  w.retry_backoff = r.getDuration("webhooks.retry_backoff").value_or(w.retry_backoff);
  w.retry_backoff_max = r.getDuration("webhooks.retry_backoff_max").value_or(w.retry_backoff_max);
  if (w.retry_backoff_max < w.retry_backoff) {
    r.problem("webhooks.retry_backoff_max", "must not be shorter than webhooks.retry_backoff");
  }
  w.max_attempts = r.getInt("webhooks.max_attempts", w.max_attempts, 1, 1000);
  w.retention_days = r.getInt("webhooks.retention_days", w.retention_days, 0, 36500);
  const auto timeout = r.getDuration("webhooks.timeout").value_or(std::chrono::seconds(10));
  for (const std::string& name : r.children("webhook")) {
    if (auto endpoint = readWebhookEndpoint(r, name, timeout)) {
      w.endpoints.push_back(std::move(*endpoint));
    }
  }
  std::sort(w.endpoints.begin(), w.endpoints.end(),
            [](const WebhookEndpoint& a, const WebhookEndpoint& b) { return a.name < b.name; });
}

}  // namespace collectord::config_detail
