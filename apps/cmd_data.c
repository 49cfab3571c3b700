/* `untangle data`: makes data set files (from a folder of JPEGs, from IDX files, or rendered)
 * and describes them. The work is in the library (untangle_data.h); this file parses options,
 * draws the progress line and prints the summary. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "untangle_data.h"

enum { DEFAULT_SIZE = 64, MAX_SIZE = 1024 };

static void help_import(FILE *out) {
  fprintf(out,
          "  untangle data import DIR --size S [--gray] -o OUT\n"
          "      Reads DIR/<class>/<file>: one sub-folder per class (classes numbered in name\n"
          "      order), every file in it tried as a JPEG (grayscale, RGB or CMYK). Each image\n"
          "      is cropped to its centred square and resized to S x S (area average when\n"
          "      shrinking, bilinear when enlarging). A file that is not a readable JPEG, a\n"
          "      file directly in DIR and anything in deeper folders is reported by name and\n"
          "      skipped; the summary counts them. Names starting with '.' are ignored.\n"
          "      --masks MDIR gives each image a mask (OverLORD's localized form): the JPEG\n"
          "      MDIR/<class>/<file> of the same name, read as gray and cropped and resized as\n"
          "      the image (white = the region); a missing mask fails the import.\n"
          "  untangle data import DIR --domains [--subset train|test] --size S [--gray] -o OUT\n"
          "      Two or more domains for unpaired translation (UNIT, DMIT): when DIR holds\n"
          "      trainA/, trainB/, ... (and testA/, testB/, ...) as UNIT and CycleGAN data sets\n"
          "      do, the domains are A, B, ... read from the --subset folders (other entries of\n"
          "      DIR are ignored); otherwise every sub-folder of DIR is a domain named after\n"
          "      it. Every image gets the one class 'all', no content label, and its domain.\n"
          "      A missing or empty domain folder (also a testX without trainX, or the other\n"
          "      way round), one with no readable image, or fewer than two domains fail.\n"
          "      -s, --size S   image side in pixels, 1..%d (default %d)\n"
          "      -g, --gray     one gray channel instead of RGB\n"
          "          --domains  sub-folders are domains, not classes\n"
          "          --subset W train (default) or test: which trainX/testX folders to read\n",
          MAX_SIZE, DEFAULT_SIZE);
}

static void help_idx(FILE *out) {
  fprintf(out,
          "  untangle data idx IMAGES LABELS --size S [--rgb] [--names LIST] -o OUT\n"
          "      Reads IDX files as MNIST and Fashion-MNIST ship them (unsigned bytes; images\n"
          "      N x rows x cols, labels N), gzip-compressed or not; Debian's\n"
          "      dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.\n"
          "      The labels are the classes. Images are resized to S x S as import does.\n"
          "      -s, --size S     image side in pixels, 1..%d (default %d)\n"
          "      -r, --rgb        three equal channels instead of one gray channel\n"
          "      -n, --names LIST comma-separated class names, one per label value\n"
          "                       (default class-0, class-1, ...)\n",
          MAX_SIZE, DEFAULT_SIZE);
}

static void help_synth(FILE *out) {
  fprintf(out,
          "  untangle data synth [--classes N] [--views V] [--size S] [--seed X] [--domains LIST]\n"
          "                      [--styles K] [--paints P [--masks]] -o OUT\n"
          "      Renders the built-in data set: N objects (the classes, named object-000, ...)\n"
          "      each in V poses (the content labels: view index), RGB. The same options give\n"
          "      the same bytes on any machine, and the options are stored in the file, so\n"
          "      evaluation can render the ground truth of any class/content swap.\n"
          "      With --domains, every object in every pose is rendered once per listed look\n"
          "      (the same geometry), domain after domain, each image labelled with its\n"
          "      domain (the position in the list, named as listed): day (the plain look),\n"
          "      night (dark blue, a warm lamp), sketch (ink lines and hatching on paper),\n"
          "      dusk (a low warm sun, rose sky).\n"
          "      -c, --classes N  objects (default 100)\n"
          "      -v, --views V    poses per object (default 96: 24 azimuths x 4 elevations)\n"
          "      -s, --size S     image side in pixels, 1..%d (default %d)\n"
          "          --seed X     selects the objects (default 0)\n"
          "          --domains L  comma-separated looks, e.g. day,night (default: day only,\n"
          "                       without domain labels)\n"
          "          --styles K   with --domains: every image in K styles within its look, a\n"
          "                       light tinted with a hue of its own per style (style 0: none),\n"
          "                       stored as the attribute \"style\" (0 .. K-1); K x the images\n"
          "      -j, --threads T  render on T threads (default 2; --styles renders on one)\n"
          "          --paints P   a third factor, correlated with the class: each image's body is\n"
          "                       painted in one of P shared schemes, drawn from its class's own\n"
          "                       distribution (0.6 / 0.3 / 0.1 over three schemes), stored as the\n"
          "                       attribute \"paint\" (1 .. P); day look only\n"
          "          --masks      with --paints: each image's painted region as its mask (for\n"
          "                       'train overlord --correlation localized')\n",
          MAX_SIZE, DEFAULT_SIZE);
}

static void help_info(FILE *out) {
  fprintf(out,
          "  untangle data info FILE [--json]\n"
          "      Checks FILE completely and describes it: image count and size, classes with\n"
          "      their image counts, content labels, domains with their image counts, the\n"
          "      per-image attributes with their ranges, whether it has masks, and where the\n"
          "      images came from.\n"
          "      -j, --json       print a JSON object instead\n");
}

void help_data(FILE *out) {
  fprintf(out,
          "Usage: untangle data SUBCOMMAND [OPTIONS]\n"
          "\n"
          "Makes the data set files that training memory-maps (uint8 images, a class per image,\n"
          "optional content and domain labels, attributes and masks, class and domain names), and describes them. Output goes to a temporary\n"
          "file next to OUT that replaces OUT only when complete: on any error OUT is unchanged.\n"
          "\n"
          "Subcommands:\n");
  help_import(out);
  help_idx(out);
  help_synth(out);
  help_info(out);
  help_data_cluster(out);
  help_data_colorize(out);
  fprintf(out,
          "\n"
          "Options of every subcommand that writes: -o, --out OUT (required); -h, --help.\n"
          "Exit status: 0 done, 1 the work failed (a file could not be read or written), 2 the\n"
          "command line was wrong.\n");
}

/* ---- progress and skipped files ------------------------------------------------------------ */

typedef struct {
  progress bar;
  int started;
  const char *label;
  int64_t skipped;
} reporter;

static void report_progress(void *user, int64_t done, int64_t total) {
  reporter *r = user;
  if (!r->started) {
    progress_begin(&r->bar, stderr, r->label, 0, total);
    r->started = 1;
  }
  char metrics[64] = "";
  if (r->skipped) snprintf(metrics, sizeof metrics, "skipped %lld", (long long)r->skipped);
  progress_update(&r->bar, done, metrics);
}

static void report_skipped(void *user, const char *file, const char *reason) {
  reporter *r = user;
  r->skipped++;
  /* On a terminal the progress line is being redrawn in place: clear it first. */
  if (r->started && r->bar.tty) fputs("\r\033[K", stderr);
  fprintf(stderr, "skipped %s: %s\n", file, reason);
}

static void report_end(reporter *r, int64_t done) {
  if (!r->started) return;
  char metrics[64] = "";
  if (r->skipped) snprintf(metrics, sizeof metrics, "skipped %lld", (long long)r->skipped);
  progress_end(&r->bar, done, metrics);
}

static int failed(const char *cmd) {
  fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
  return CLI_FAILED;
}

/* " A (3), B (2)" for the domains of ds. */
static void print_domain_counts(const ut_dataset *ds) {
  int k = ut_dataset_n_domains(ds);
  for (int d = 0; d < k; d++) {
    int32_t *idx, n;
    if (ut_dataset_domain_indices(ds, d, &idx, &n) != UT_OK) n = 0, idx = NULL;
    free(idx);
    printf("%s %s (%d)", d ? "," : "", ut_dataset_domain_name(ds, d), n);
  }
}

static void print_written(const char *out, const ut_import_stats *st, int size, int channels) {
  printf("wrote %s: %lld images of %d x %d %s, %d classes", out, (long long)st->imported, size, size,
         channels == 3 ? "RGB" : "gray", st->n_classes);
  if (st->skipped) printf("; skipped %lld files", (long long)st->skipped);
  printf("\n");
  if (st->empty_classes) printf("warning: %d classes have no image\n", st->empty_classes);
}

/* Options shared by the writing subcommands. `extra` adds a subcommand's own ones. */
enum { OPT_SEED = 256, OPT_DOMAINS, OPT_SUBSET, OPT_STYLES, OPT_PAINTS, OPT_MASKS };

typedef struct {
  const char *out;
  int64_t size, classes, views, threads, styles;
  uint64_t seed;
  int gray, rgb, json, domains;
  const char *names, *domain_list, *subset;
  int64_t paints;         /* data synth --paints */
  int masks;              /* data synth --masks */
  const char *mask_dir;   /* data import --masks DIR */
} options;

static int parse(const char *cmd, int argc, char **argv, const char *shorts, const struct option *longs,
                 void (*help)(FILE *), int n_args, options *o, int *done) {
  *o = (options){ .size = DEFAULT_SIZE, .classes = 100, .views = 96, .threads = 2 };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1;) {
    switch (c) {
    case 'o': o->out = optarg; break;
    case 's': rc = cli_parse_i64(cmd, "--size", optarg, 1, MAX_SIZE, &o->size); break;
    case 'g': o->gray = 1; break;
    case 'r': o->rgb = 1; break;
    case 'n': o->names = optarg; break;
    case 'c': rc = cli_parse_i64(cmd, "--classes", optarg, 1, 1000000, &o->classes); break;
    case 'v': rc = cli_parse_i64(cmd, "--views", optarg, 1, 1000000, &o->views); break;
    case 'j':
      if (strcmp(cmd, "data info") == 0)
        o->json = 1;
      else
        rc = cli_parse_i64(cmd, "--threads", optarg, 1, 16, &o->threads);
      break;
    case OPT_SEED: rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case OPT_DOMAINS:
      o->domains = 1;
      o->domain_list = optarg; /* NULL for import's flag */
      break;
    case OPT_PAINTS: rc = cli_parse_i64(cmd, "--paints", optarg, 1, 4096, &o->paints); break;
    case OPT_MASKS:
      o->masks = 1;
      o->mask_dir = optarg; /* NULL for synth's flag */
      break;
    case OPT_STYLES: rc = cli_parse_i64(cmd, "--styles", optarg, 1, 64, &o->styles); break;
    case OPT_SUBSET:
      if (strcmp(optarg, "train") != 0 && strcmp(optarg, "test") != 0)
        rc = cli_usage_error(cmd, "--subset expects train or test, not '%s'", optarg);
      o->subset = optarg;
      break;
    case 'h':
      printf("Usage:\n");
      help(stdout);
      return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  int given = argc - optind;
  if (given != n_args) {
    if (given > n_args) return cli_usage_error(cmd, "takes %d file or folder names, got also '%s'", n_args, argv[optind + n_args]);
    return cli_usage_error(cmd, "expects %d file or folder name%s, got %d", n_args, n_args == 1 ? "" : "s", given);
  }
  for (int i = optind; i < argc; i++)
    if (!*argv[i]) return cli_usage_error(cmd, "expects file or folder names, not an empty string");
  if (strcmp(cmd, "data info") != 0 && (!o->out || !*o->out))
    return cli_usage_error(cmd, "needs the output file: -o OUT");
  *done = 0;
  return CLI_OK;
}

static int data_import(int argc, char **argv) {
  static const struct option longs[] = { { "size", required_argument, NULL, 's' },
                                         { "gray", no_argument, NULL, 'g' },
                                         { "domains", no_argument, NULL, OPT_DOMAINS },
                                         { "subset", required_argument, NULL, OPT_SUBSET },
                                         { "masks", required_argument, NULL, OPT_MASKS },
                                         { "out", required_argument, NULL, 'o' },
                                         { "help", no_argument, NULL, 'h' },
                                         { NULL, 0, NULL, 0 } };
  options o;
  int done, rc = parse("data import", argc, argv, ":s:go:h", longs, help_import, 1, &o, &done);
  if (done) return rc;
  if (o.subset && !o.domains) return cli_usage_error("data import", "--subset goes with --domains");
  if (o.mask_dir && o.domains) return cli_usage_error("data import", "--masks goes with class folders, not --domains");
  const char *dir = argv[optind];
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "untangle data import: %s is not a folder\n", dir);
    return CLI_FAILED;
  }
  reporter r = { .label = "import" };
  ut_import_cfg cfg = { .size = (int)o.size, .channels = o.gray ? 1 : 3, .progress = report_progress,
                        .skipped = report_skipped, .user = &r, .mask_dir = o.mask_dir };
  ut_import_stats st;
  ut_status s = o.domains ? ut_import_domains(dir, o.subset, o.out, &cfg, &st) : ut_import_folder(dir, o.out, &cfg, &st);
  report_end(&r, st.imported + st.skipped);
  if (s != UT_OK) return failed("data import");
  if (!o.domains) {
    print_written(o.out, &st, (int)o.size, cfg.channels);
    return CLI_OK;
  }
  /* The domains and their counts, from the file just written. */
  ut_dataset *ds = ut_dataset_open(o.out);
  if (!ds) return failed("data import");
  printf("wrote %s: %lld images of %d x %d %s, %d domains:", o.out, (long long)st.imported, (int)o.size, (int)o.size,
         cfg.channels == 3 ? "RGB" : "gray", st.n_domains);
  print_domain_counts(ds);
  if (st.skipped) printf("; skipped %lld files", (long long)st.skipped);
  printf("\n");
  ut_dataset_close(ds);
  return CLI_OK;
}

/* Splits "a,b,c" into a NULL-terminated list (in place). */
static char **split_names(char *text, int *n) {
  int count = 1;
  for (char *p = text; *p; p++) count += *p == ',';
  char **names = calloc((size_t)count + 1, sizeof *names);
  if (!names) return NULL;
  *n = 0;
  for (char *p = text;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    names[(*n)++] = p;
    if (!comma) break;
    p = comma + 1;
  }
  return names;
}

static int data_idx(int argc, char **argv) {
  static const struct option longs[] = { { "size", required_argument, NULL, 's' }, { "rgb", no_argument, NULL, 'r' },
                                         { "names", required_argument, NULL, 'n' }, { "out", required_argument, NULL, 'o' },
                                         { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 } };
  options o;
  int done, rc = parse("data idx", argc, argv, ":s:rn:o:h", longs, help_idx, 2, &o, &done);
  if (done) return rc;
  char *names_text = o.names ? strdup(o.names) : NULL;
  int n_names = 0;
  char **names = names_text ? split_names(names_text, &n_names) : NULL;
  for (int i = 0; i < n_names; i++)
    if (!*names[i]) {
      free(names);
      free(names_text);
      return cli_usage_error("data idx", "--names has an empty name at position %d", i + 1);
    }
  reporter r = { .label = "idx" };
  ut_import_cfg cfg = { .size = (int)o.size, .channels = o.rgb ? 3 : 1, .progress = report_progress, .user = &r };
  ut_import_stats st;
  ut_status s = ut_import_idx(argv[optind], argv[optind + 1], o.out, (const char *const *)names, &cfg, &st);
  report_end(&r, st.imported);
  free(names);
  free(names_text);
  if (s != UT_OK) return failed("data idx");
  print_written(o.out, &st, (int)o.size, cfg.channels);
  return CLI_OK;
}

static int data_synth(int argc, char **argv) {
  static const struct option longs[] = { { "classes", required_argument, NULL, 'c' },
                                         { "views", required_argument, NULL, 'v' },
                                         { "size", required_argument, NULL, 's' },
                                         { "seed", required_argument, NULL, OPT_SEED },
                                         { "domains", required_argument, NULL, OPT_DOMAINS },
                                         { "paints", required_argument, NULL, OPT_PAINTS },
                                         { "masks", no_argument, NULL, OPT_MASKS },
                                         { "styles", required_argument, NULL, OPT_STYLES },
                                         { "threads", required_argument, NULL, 'j' },
                                         { "out", required_argument, NULL, 'o' },
                                         { "help", no_argument, NULL, 'h' },
                                         { NULL, 0, NULL, 0 } };
  options o;
  int done, rc = parse("data synth", argc, argv, ":c:v:s:j:o:h", longs, help_synth, 0, &o, &done);
  if (done) return rc;
  /* --domains day,night: the looks in order; each at most once (the names label the domains). */
  int looks[UT_SYNTH_DOMAIN_COUNT], n_looks = 0;
  if (o.domain_list) {
    const char *p = o.domain_list;
    for (;;) {
      size_t len = strcspn(p, ",");
      char name[32];
      snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name - 1 ? len : sizeof name - 1), p);
      int d = len < sizeof name ? ut_synth_domain_from_name(name) : -1;
      if (d < 0)
        return cli_usage_error("data synth", "--domains: unknown look '%.*s' (known: day, night, sketch, dusk)",
                               (int)len, p);
      for (int k = 0; k < n_looks; k++)
        if (looks[k] == d) return cli_usage_error("data synth", "--domains: '%s' is listed twice", name);
      looks[n_looks++] = d;
      if (!p[len]) break;
      p += len + 1;
    }
  }
  if (o.styles && !n_looks) return cli_usage_error("data synth", "--styles needs --domains");
  int64_t sets = (n_looks ? n_looks : 1) * (o.styles ? o.styles : 1);
  if (o.classes * o.views * sets > INT32_MAX)
    return cli_usage_error("data synth", "--classes %lld x --views %lld%s is more images than a data set holds",
                           (long long)o.classes, (long long)o.views, n_looks ? " x the domains" : "");
  ut_synth_cfg cfg = { .classes = (int)o.classes, .views = (int)o.views, .size = (int)o.size, .seed = o.seed };
  reporter r = { .label = "render" };
  if (o.masks && !o.paints) return cli_usage_error("data synth", "--masks marks the painted region: it needs --paints P");
  if (o.paints && n_looks) return cli_usage_error("data synth", "--paints renders the day look; it takes no --domains");
  if (o.paints) {
    ut_status ps = ut_synth_write_paints(&cfg, (int)o.paints, o.masks, o.out, report_progress, &r);
    report_end(&r, ps == UT_OK ? o.classes * o.views : 0);
    if (ps != UT_OK) return failed("data synth");
    printf("wrote %s: %lld images of %lld x %lld RGB, %lld classes x %lld views, %lld paints%s (seed %llu)\n", o.out,
           (long long)(o.classes * o.views), (long long)o.size, (long long)o.size, (long long)o.classes,
           (long long)o.views, (long long)o.paints, o.masks ? ", with masks" : "", (unsigned long long)o.seed);
    return CLI_OK;
  }
  ut_status s = o.styles ? ut_synth_write_styles(&cfg, looks, NULL, n_looks, (int)o.styles, o.out, report_progress, &r)
                : n_looks ? ut_synth_write_domains(&cfg, looks, NULL, n_looks, o.out, (int)o.threads, report_progress, &r)
                          : ut_synth_write_dataset(&cfg, o.out, (int)o.threads, report_progress, &r);
  report_end(&r, s == UT_OK ? o.classes * o.views * sets : 0);
  if (s != UT_OK) return failed("data synth");
  printf("wrote %s: %lld images of %lld x %lld RGB, %lld classes x %lld views", o.out,
         (long long)(o.classes * o.views * sets), (long long)o.size, (long long)o.size, (long long)o.classes,
         (long long)o.views);
  if (n_looks) {
    printf(" x %d domains (", n_looks);
    for (int k = 0; k < n_looks; k++) printf("%s%s", k ? ", " : "", ut_synth_domain_name(looks[k]));
    printf(")");
  }
  if (o.styles) printf(" x %lld styles", (long long)o.styles);
  printf(" (seed %llu)\n", (unsigned long long)o.seed);
  return CLI_OK;
}

static int data_info(int argc, char **argv) {
  static const struct option longs[] = { { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
                                         { NULL, 0, NULL, 0 } };
  options o;
  int done, rc = parse("data info", argc, argv, ":jh", longs, help_info, 1, &o, &done);
  if (done) return rc;
  ut_dataset *ds = ut_dataset_open(argv[optind]);
  if (!ds) return failed("data info");
  int k = ut_dataset_n_classes(ds);
  int32_t n = ut_dataset_count(ds);
  int64_t *per_class = calloc((size_t)k, sizeof *per_class);
  int64_t *per_domain = calloc((size_t)ut_dataset_n_domains(ds) + 1, sizeof *per_domain);
  int na = ut_dataset_n_attributes(ds);
  float *lo = calloc((size_t)na + 1, sizeof *lo), *hi = calloc((size_t)na + 1, sizeof *hi);
  if (!per_class || !per_domain || !lo || !hi) {
    free(per_class);
    free(per_domain);
    free(lo);
    free(hi);
    ut_dataset_close(ds);
    fprintf(stderr, "untangle data info: out of memory\n");
    return CLI_FAILED;
  }
  for (int32_t i = 0; i < n; i++) {
    per_class[ut_dataset_class(ds, i)]++;
    per_domain[ut_dataset_domain(ds, i) + 1]++; /* -1 (no domains) counts in slot 0 */
  }
  per_domain++;
  /* Each attribute's range: enough to tell a hue in degrees from a style id at a glance. */
  for (int a = 0; a < na; a++) {
    lo[a] = hi[a] = ut_dataset_attribute(ds, 0, a);
    for (int32_t i = 1; i < n; i++) {
      float v = ut_dataset_attribute(ds, i, a);
      lo[a] = v < lo[a] ? v : lo[a];
      hi[a] = v > hi[a] ? v : hi[a];
    }
  }
  json_t *source = json_loads(ut_dataset_source_json(ds), 0, NULL);
  if (o.json) {
    json_t *names = json_array(), *counts = json_array();
    for (int c = 0; c < k; c++) {
      json_array_append_new(names, json_string(ut_dataset_class_name(ds, c)));
      json_array_append_new(counts, json_integer(per_class[c]));
    }
    json_t *dnames = json_array(), *dcounts = json_array();
    for (int d = 0; d < ut_dataset_n_domains(ds); d++) {
      json_array_append_new(dnames, json_string(ut_dataset_domain_name(ds, d)));
      json_array_append_new(dcounts, json_integer(per_domain[d]));
    }
    json_t *attrs = json_array();
    for (int a = 0; a < na; a++)
      json_array_append_new(attrs, json_pack("{s:s, s:f, s:f}", "name", ut_dataset_attribute_name(ds, a), "min",
                                             (double)lo[a], "max", (double)hi[a]));
    json_t *j = json_pack("{s:s?, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:b, s:O?}", "path",
                          argv[optind], "count", n, "height", ut_dataset_height(ds), "width", ut_dataset_width(ds),
                          "channels", ut_dataset_channels(ds), "n_classes", k, "class_names", names, "class_counts",
                          counts, "n_contents", ut_dataset_n_contents(ds), "n_domains", ut_dataset_n_domains(ds),
                          "domain_names", dnames, "domain_counts", dcounts, "attributes", attrs, "has_masks",
                          ut_dataset_has_masks(ds), "source", source);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (text) {
      printf("%s\n", text);
    } else {
      fprintf(stderr, "untangle data info: cannot format %s as JSON (is its path valid UTF-8?)\n", argv[optind]);
      rc = CLI_FAILED;
    }
    free(text);
    json_decref(j);
  } else {
    printf("%s\n", argv[optind]);
    printf("  images    %d of %d x %d %s\n", n, ut_dataset_height(ds), ut_dataset_width(ds),
           ut_dataset_channels(ds) == 3 ? "RGB" : "gray");
    printf("  classes   %d:", k);
    int shown = k <= 12 ? k : 10;
    for (int c = 0; c < shown; c++)
      printf("%s %s (%lld)", c ? "," : "", ut_dataset_class_name(ds, c), (long long)per_class[c]);
    if (shown < k) printf(", ... %s (%lld)", ut_dataset_class_name(ds, k - 1), (long long)per_class[k - 1]);
    printf("\n");
    if (ut_dataset_n_contents(ds) > 0)
      printf("  contents  %d content labels\n", ut_dataset_n_contents(ds));
    else
      printf("  contents  none\n");
    int nd = ut_dataset_n_domains(ds);
    if (nd > 0) {
      printf("  domains   %d:", nd);
      for (int d = 0; d < nd; d++)
        printf("%s %s (%lld)", d ? "," : "", ut_dataset_domain_name(ds, d), (long long)per_domain[d]);
      printf("\n");
    } else {
      printf("  domains   none\n");
    }
    printf("  attributes");
    for (int a = 0; a < na; a++)
      printf("%s %s (%g .. %g)", a ? "," : "", ut_dataset_attribute_name(ds, a), (double)lo[a], (double)hi[a]);
    printf("%s\n", na ? "" : " none");
    printf("  masks     %s\n", ut_dataset_has_masks(ds) ? "one per image" : "none");
    printf("  source    %s\n", ut_dataset_source_json(ds));
  }
  free(lo);
  free(hi);
  json_decref(source);
  free(per_class);
  free(per_domain - 1);
  ut_dataset_close(ds);
  return rc;
}

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
} subcommand;

static const subcommand subcommands[] = {
  { "import", data_import },
  { "idx", data_idx },
  { "synth", data_synth },
  { "info", data_info },
  { "cluster", data_cluster },
  { "colorize", data_colorize },
};

/* "import, idx, ..." from the table, so the messages list every subcommand there is. */
static const char *subcommand_names(void) {
  static char names[128];
  if (!names[0])
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", subcommands[i].name);
  return names;
}

int cmd_data(int argc, char **argv) {
  if (argc < 2) return cli_usage_error("data", "expects a subcommand: %s", subcommand_names());
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    help_data(stdout);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
  return cli_usage_error("data", "unknown subcommand '%s' (%s)", argv[1], subcommand_names());
}
