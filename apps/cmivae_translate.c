/* `untangle translate` and `untangle grid` of a CMI-VAE run: z1 from content images, z2 from a
 * feature (another image's hue, a hue in degrees, or a class), fused by the generator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmivae_colour.h"
#include "cmivae_train.h"
#include "commands.h"

#define MAX_ITEMS 16

void cmivae_help_translate(FILE *out) {
  fprintf(out,
          "Usage: untangle translate RUN --content-from A.jpg (--feature-from B.jpg | --hue H | --class K)\n"
          "                          -o OUT.jpg [-d D]\n"
          "\n"
          "Draws A.jpg's z1 (the mean of the CMI-VAE run's E1) with the z2 of a feature: of a hue run,\n"
          "the hue measured in B.jpg (the angle of its mean colour in the opponent-colour plane) or the\n"
          "hue H in degrees; of a class run, class K (a name or an index). Images are centre-cropped\n"
          "and resized to the model's size.\n");
}

void cmivae_help_grid(FILE *out) {
  fprintf(out,
          "Usage: untangle grid RUN --content-from A.jpg,B.jpg,... (--feature-from C.jpg,D.jpg,... |\n"
          "                     --hue H1,H2,... | --class K1,K2,...) -o GRID.jpg [-d D]\n"
          "\n"
          "A fusion grid of a CMI-VAE run: the content images (1 to 16) down the left, the feature\n"
          "sources (1 to 16) across the top (a hue is shown as a swatch of its colour, a class as a\n"
          "blank tile), and in each cell the content image's z1 drawn with the column's z2.\n");
}

typedef struct {
  const char *run, *out, *device, *content, *feature_from, *hue, *klass;
} infer_options;

enum { OPT_CONTENT = 256, OPT_FEATURE_FROM, OPT_HUE, OPT_CLASS };

/* Splits a comma-separated list in place into items (at most MAX_ITEMS); the count, or -1. */
static int split_list(char *text, char **items) {
  int n = 0;
  for (char *tok = strtok(text, ","); tok; tok = strtok(NULL, ",")) {
    if (n == MAX_ITEMS) return -1;
    items[n++] = tok;
  }
  return n;
}

static int parse(const char *cmd, int argc, char **argv, int grid, infer_options *o, int *done) {
  static const struct option long_options[] = {
    { "content-from", required_argument, NULL, OPT_CONTENT }, { "feature-from", required_argument, NULL, OPT_FEATURE_FROM },
    { "hue", required_argument, NULL, OPT_HUE },              { "class", required_argument, NULL, OPT_CLASS },
    { "out", required_argument, NULL, 'o' },                  { "device", required_argument, NULL, 'd' },
    { "help", no_argument, NULL, 'h' },                       { NULL, 0, NULL, 0 },
  };
  *o = (infer_options){ .device = cli_default_device() };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":o:d:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_CONTENT: o->content = optarg; break;
    case OPT_FEATURE_FROM: o->feature_from = optarg; break;
    case OPT_HUE: o->hue = optarg; break;
    case OPT_CLASS: o->klass = optarg; break;
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case 'h': (grid ? cmivae_help_grid : cmivae_help_translate)(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN first");
  o->run = argv[optind++];
  if (optind < argc) return cli_usage_error(cmd, "takes one run folder, got also '%s'", argv[optind]);
  if (!o->content) return cli_usage_error(cmd, "needs --content-from IMAGE%s", grid ? "S (comma-separated)" : "");
  if (!!o->feature_from + !!o->hue + !!o->klass != 1)
    return cli_usage_error(cmd, "needs exactly one of --feature-from, --hue and --class");
  if (!o->out) return cli_usage_error(cmd, "needs -o OUT.jpg");
  *done = 0;
  return CLI_OK;
}

/* The class named `text` (a class name of the run's data is not known here, so an index). */
static int parse_class(const char *cmd, const char *text, int n_classes, int *out) {
  int64_t k;
  if (cli_parse_i64(cmd, "--class", text, 0, n_classes - 1, &k) != CLI_OK) return CLI_USAGE;
  *out = (int)k;
  return CLI_OK;
}

static int run(const char *cmd, infer_options *o, int grid) {
  char *content[MAX_ITEMS], *features[MAX_ITEMS];
  char *clist = strdup(o->content), *flist = strdup(o->feature_from ? o->feature_from : o->hue ? o->hue : o->klass);
  int rows = clist ? split_list(clist, content) : -1, cols = flist ? split_list(flist, features) : -1;
  int rc = CLI_FAILED;
  float *images = NULL, *swatches = NULL, *rows_f = NULL, *out = NULL;
  cmivae_model *m = NULL;
  ut_runtime *rt = NULL;
  if (rows < 1 || cols < 1) {
    rc = cli_usage_error(cmd, "takes 1 to %d content images and 1 to %d features", MAX_ITEMS, MAX_ITEMS);
    goto done;
  }
  if (!grid && (rows != 1 || cols != 1)) {
    rc = cli_usage_error(cmd, "translates one image with one feature; 'untangle grid' takes lists");
    goto done;
  }
  if (!(rt = cli_open_runtime(cmd, o->device, 0))) goto done;
  if (!(m = cmivae_open_run(rt, o->run))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const cmivae_cfg *c = cmivae_config(m);
  int hue_run = c->feature == CMIVAE_FEATURE_HUE;
  if ((o->klass && hue_run) || ((o->hue || o->feature_from) && !hue_run)) {
    rc = cli_usage_error(cmd, "%s is a %s run: it takes %s", o->run, cmivae_feature_name(c->feature),
                         hue_run ? "--feature-from IMAGE or --hue DEGREES" : "--class K (a class is not read from pixels)");
    goto done;
  }
  int64_t per = (int64_t)c->channels * c->size * c->size, F = cmivae_feature_width(c);
  images = malloc((size_t)(rows * per) * sizeof *images);
  swatches = calloc((size_t)(cols * per), sizeof *swatches);
  rows_f = malloc((size_t)(cols * F) * sizeof *rows_f);
  out = malloc((size_t)per * sizeof *out);
  if (!images || !swatches || !rows_f || !out) {
    fprintf(stderr, "untangle %s: out of memory\n", cmd);
    goto done;
  }
  for (int i = 0; i < rows; i++)
    if (ut_jpeg_read_float(content[i], c->channels, c->size, images + i * per) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      goto done;
    }
  for (int j = 0; j < cols; j++) {
    double hue = 0;
    int klass = 0;
    if (o->feature_from) {
      if (ut_jpeg_read_float(features[j], c->channels, c->size, swatches + j * per) != UT_OK) {
        fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
        goto done;
      }
      if (isnan(hue = cmivae_image_hue(swatches + j * per, (int64_t)c->size * c->size))) {
        fprintf(stderr, "untangle %s: %s has no colour, so no hue to take\n", cmd, features[j]);
        goto done;
      }
    } else if (o->hue) {
      char *end;
      hue = strtod(features[j], &end);
      if (end == features[j] || *end || !isfinite(hue)) {
        rc = cli_usage_error(cmd, "--hue expects degrees, not '%s'", features[j]);
        goto done;
      }
      double rgb[3];
      cmivae_hue_colour(hue, rgb);
      for (int k = 0; k < 3; k++)
        for (int64_t p = 0; p < (int64_t)c->size * c->size; p++) swatches[j * per + k * c->size * c->size + p] = (float)rgb[k];
    } else if ((rc = parse_class(cmd, features[j], c->n_classes, &klass)) != CLI_OK) {
      goto done;
    }
    cmivae_feature_row(c, (float)hue, klass, rows_f + j * F);
  }
  rc = CLI_FAILED;
  ut_status st;
  if (grid) {
    st = cmivae_fusion_grid(m, images, rows, o->klass ? NULL : swatches, rows_f, cols, o->out);
  } else {
    float *z1 = malloc((size_t)c->z1_dim * sizeof *z1);
    st = z1 ? cmivae_encode(m, images, 1, z1) : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    if (st == UT_OK) st = cmivae_generate(m, z1, rows_f, 1, out);
    if (st == UT_OK) st = ut_grid_write_jpeg(o->out, out, 1, c->channels, c->size, c->size, 1, 95);
    free(z1);
  }
  if (st != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("wrote %s\n", o->out);
  rc = CLI_OK;
done:
  free(clist);
  free(flist);
  free(images);
  free(swatches);
  free(rows_f);
  free(out);
  cmivae_free(m);
  ut_runtime_close(rt);
  return rc;
}

int cmivae_cmd_translate(int argc, char **argv) {
  infer_options o;
  int done, rc = parse("translate", argc, argv, 0, &o, &done);
  return done ? rc : run("translate", &o, 0);
}

int cmivae_cmd_grid(int argc, char **argv) {
  infer_options o;
  int done, rc = parse("grid", argc, argv, 1, &o, &done);
  return done ? rc : run("grid", &o, 1);
}
