/* `untangle translate` and `untangle grid` of a LORD run: one-shot translation with its
 * stage-2 encoders, so images of classes never seen in training work too. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "lord_train.h"

void lord_help_translate(FILE *out) {
  fprintf(out,
          "Usage: untangle translate RUN --class-from A.jpg --content-from B.jpg -o OUT.jpg [-d D]\n"
          "\n"
          "Draws the content (pose, layout) of B in the class (identity, style) of A with the\n"
          "encoders and generator of RUN/" LORD_CHECKPOINT " (stage 2 must be trained). The images\n"
          "are centre-cropped and resized to the model's size.\n");
}

void lord_help_grid(FILE *out) {
  fprintf(out,
          "Usage: untangle grid RUN --images A.jpg B.jpg ... -o GRID.jpg [-d D]\n"
          "\n"
          "A translation grid of the given images (2 to 12): the first row shows them as content\n"
          "sources, the first column as class sources, and each cell the content of its column in\n"
          "the class of its row, with the stage-2 encoders of RUN/" LORD_CHECKPOINT ".\n");
}

/* Parses RUN, -o, -d and the image options shared by both commands. */
typedef struct {
  const char *run, *out, *device, *class_from, *content_from;
  char **images;
  int n_images;
} options;

static int parse(const char *cmd, int argc, char **argv, options *o, int *done, void (*help)(FILE *)) {
  static const struct option long_options[] = {
    { "out", required_argument, NULL, 'o' },         { "device", required_argument, NULL, 'd' },
    { "class-from", required_argument, NULL, 'a' },  { "content-from", required_argument, NULL, 'c' },
    { "images", no_argument, NULL, 'i' },            { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (options){ .device = cli_default_device() };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int images = 0;
  for (int c; (c = getopt_long(argc, argv, ":o:d:h", long_options, NULL)) != -1;) {
    switch (c) {
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case 'a': o->class_from = optarg; break;
    case 'c': o->content_from = optarg; break;
    case 'i': images = 1; break;
    case 'h': help(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN first");
  o->run = argv[optind++];
  if (images) {
    o->images = argv + optind;
    o->n_images = argc - optind;
  } else if (optind < argc) {
    return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  }
  if (!o->out) return cli_usage_error(cmd, "needs -o OUT.jpg");
  *done = 0;
  return CLI_OK;
}

/* Reads and encodes n JPEGs; images, content and class codes are malloc'd. */
static int encode_files(const char *cmd, lord_model *m, char *const *files, int n, float **images, float **content,
                        float **klass) {
  const lord_cfg *c = lord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size;
  *images = malloc((size_t)(n * per) * sizeof(float));
  *content = malloc((size_t)n * c->content_dim * sizeof(float));
  *klass = malloc((size_t)n * c->class_dim * sizeof(float));
  if (!*images || !*content || !*klass) {
    fprintf(stderr, "untangle %s: out of memory\n", cmd);
    return CLI_FAILED;
  }
  for (int i = 0; i < n; i++)
    if (ut_jpeg_read_float(files[i], c->channels, c->size, *images + i * per) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      return CLI_FAILED;
    }
  if (lord_encode(m, *images, n, *content, *klass) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    return CLI_FAILED;
  }
  return CLI_OK;
}

static int run(const char *cmd, const options *o, int grid) {
  int rc = CLI_FAILED;
  float *images = NULL, *content = NULL, *klass = NULL, *out = NULL;
  lord_model *m = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, o->device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = lord_open_run(rt, o->run, 2, NULL))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const lord_cfg *c = lord_config(m);
  if (grid) {
    if (encode_files(cmd, m, o->images, o->n_images, &images, &content, &klass) != CLI_OK) goto done;
    if (lord_grid_write(m, images, content, klass, o->n_images, o->out) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      goto done;
    }
  } else {
    char *files[2] = { (char *)o->class_from, (char *)o->content_from };
    if (encode_files(cmd, m, files, 2, &images, &content, &klass) != CLI_OK) goto done;
    int64_t per = (int64_t)c->channels * c->size * c->size;
    out = malloc((size_t)per * sizeof *out);
    /* The content of the second image in the class of the first. */
    if (!out || lord_generate(m, content + c->content_dim, klass, 1, out) != UT_OK ||
        ut_grid_write_jpeg(o->out, out, 1, c->channels, c->size, c->size, 1, 95) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, out ? ut_last_error() : "out of memory");
      goto done;
    }
  }
  printf("wrote %s\n", o->out);
  rc = CLI_OK;
done:
  free(images);
  free(content);
  free(klass);
  free(out);
  lord_free(m);
  ut_runtime_close(rt);
  return rc;
}

int lord_cmd_translate(int argc, char **argv) {
  options o;
  int done, rc = parse("translate", argc, argv, &o, &done, lord_help_translate);
  if (done) return rc;
  if (!o.class_from || !o.content_from) return cli_usage_error("translate", "needs --class-from and --content-from");
  return run("translate", &o, 0);
}

int lord_cmd_grid(int argc, char **argv) {
  options o;
  int done, rc = parse("grid", argc, argv, &o, &done, lord_help_grid);
  if (done) return rc;
  if (o.n_images < 2 || o.n_images > 12) return cli_usage_error("grid", "needs 2 to 12 images after --images");
  return run("grid", &o, 1);
}
