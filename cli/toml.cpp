// toml++ behind a C interface (see toml.h): the only C++ in hq.
#include "toml.h"

#include <sstream>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace
{

json_t *convert(const toml::node &n, hq_err_t *err);

json_t *convert_table(const toml::table &t, hq_err_t *err)
{
    json_t *o = json_object();
    for (const auto &[key, value] : t) {
        std::string k(key.str());
        if (k == HQ_TOML_LINE_KEY) {
            hq_err_set(err, "Invalid key at line %u", (unsigned)key.source().begin.line);
            json_decref(o);
            return nullptr;
        }
        json_t *v = convert(value, err);
        if (!v) {
            json_decref(o);
            return nullptr;
        }
        json_object_setn_new(o, k.data(), k.size(), v);
    }
    json_object_set_new(o, HQ_TOML_LINE_KEY, json_integer((json_int_t)t.source().begin.line));
    return o;
}

json_t *convert(const toml::node &n, hq_err_t *err)
{
    if (const auto *t = n.as_table())
        return convert_table(*t, err);
    if (const auto *a = n.as_array()) {
        json_t *arr = json_array();
        for (const auto &item : *a) {
            json_t *v = convert(item, err);
            if (!v) {
                json_decref(arr);
                return nullptr;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    if (const auto *s = n.as_string()) {
        const std::string &str = s->get();
        return json_stringn(str.data(), str.size());
    }
    if (const auto *i = n.as_integer())
        return json_integer((json_int_t)i->get());
    if (const auto *f = n.as_floating_point())
        return json_real(f->get());
    if (const auto *b = n.as_boolean())
        return json_boolean(b->get());
    // dates and times: their TOML text
    std::string text;
    if (const auto *d = n.as_date())
        text = (std::ostringstream() << *d).str();
    else if (const auto *tm = n.as_time())
        text = (std::ostringstream() << *tm).str();
    else if (const auto *dt = n.as_date_time())
        text = (std::ostringstream() << *dt).str();
    return json_stringn(text.data(), text.size());
}

} // namespace

extern "C" json_t *hq_toml_parse(const char *text, size_t len, hq_err_t *err)
{
    try {
        toml::table t = toml::parse(std::string_view(text, len));
        return convert_table(t, err);
    } catch (const toml::parse_error &e) {
        std::string desc(e.description());
        hq_err_set(err, "%s at line %u, column %u", desc.c_str(), (unsigned)e.source().begin.line,
                   (unsigned)e.source().begin.column);
        return nullptr;
    } catch (const std::exception &e) {
        hq_err_set(err, "%s", e.what());
        return nullptr;
    }
}

extern "C" int hq_toml_line(const json_t *table)
{
    json_t *v = json_object_get(table, HQ_TOML_LINE_KEY);
    return json_is_integer(v) ? (int)json_integer_value(v) : 0;
}
