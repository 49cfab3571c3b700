/* `untangle data cluster`: a data set whose classes are style clusters (models/style_cluster.h),
 * so LORD can treat the styles within one domain as its classes. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "style_cluster.h"

#define CMD "data cluster"

void help_data_cluster(FILE *out) {
  fprintf(out,
          "  untangle data cluster FILE --k K [--vgg W] [--seed X] [-d D] -o OUT\n"
          "      Copies FILE with its class labels replaced by K clusters (k-means) of the\n"
          "      images' styles: Gram matrices of the ReLU output of one 3x3 convolution with 64\n"
          "      filters, VGG16's first layer (features.0 of torchvision weights in safetensors\n"
          "      file W) or, without --vgg, a fixed random layer drawn from the seed. Classes are\n"
          "      named style-000, ...; images and content labels are kept.\n"
          "      -k, --k K        clusters, 1 .. the number of images (required)\n"
          "          --vgg W      torchvision vgg16 weights (safetensors) for the first layer\n"
          "          --seed X     k-means++ seeding and the random layer (default 1)\n"
          "      -d, --device D   the OpenCL device for the features (default: $UNTANGLE_DEVICE,\n"
          "                       else best)\n");
}

/* VGG16's first layer (64 x 3 x 3 x 3) from a safetensors file into w and b. For gray images
 * the three input channels' weights are summed: the same as feeding the gray image as RGB. */
static ut_status load_first_layer(ut_runtime *rt, const char *path, int channels, float *w, float *b) {
  ut_store *st = ut_store_new(rt, 1);
  ut_status s = st ? ut_store_import(st, path, "") : UT_ERR_HOST_MEMORY;
  ut_store_tensor *tw = s == UT_OK ? ut_store_find(st, "features.0.weight") : NULL;
  ut_store_tensor *tb = s == UT_OK ? ut_store_find(st, "features.0.bias") : NULL;
  ut_shape ws = tw ? ut_store_tensor_shape(tw) : (ut_shape){ 0 };
  if (s == UT_OK && (!tw || !tb || ws.rank != 4 || ws.d[0] != STYLE_CHANNELS || ws.d[1] != 3 ||
                     ws.d[2] != 3 || ws.d[3] != 3))
    s = ut_fail(UT_ERR_FORMAT, "%s: expected tensors features.0.weight [64, 3, 3, 3] and features.0.bias [64] "
                "(torchvision vgg16)", path);
  float rgb[STYLE_CHANNELS * 27];
  if (s == UT_OK) s = ut_store_tensor_read(st, tw, rgb);
  if (s == UT_OK) s = ut_store_tensor_read(st, tb, b);
  for (int o = 0; s == UT_OK && o < STYLE_CHANNELS; o++)
    for (int t = 0; t < 9; t++) {
      const float *src = rgb + o * 27 + t;
      if (channels == 3)
        for (int ch = 0; ch < 3; ch++) w[(o * 3 + ch) * 9 + t] = src[ch * 9];
      else
        w[o * 9 + t] = src[0] + src[9] + src[18];
    }
  ut_store_free(st);
  return s;
}

int data_cluster(int argc, char **argv) {
  static const struct option longs[] = {
    { "k", required_argument, NULL, 'k' },       { "vgg", required_argument, NULL, 'V' },
    { "seed", required_argument, NULL, 'S' },    { "device", required_argument, NULL, 'd' },
    { "out", required_argument, NULL, 'o' },     { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *device = cli_default_device(), *vgg = NULL, *out = NULL;
  int64_t k = 0;
  uint64_t seed = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":k:d:o:h", longs, NULL)) != -1;) {
    switch (c) {
    case 'k': rc = cli_parse_i64(CMD, "--k", optarg, 1, INT32_MAX, &k); break;
    case 'V': vgg = optarg; break;
    case 'S': rc = cli_parse_u64(CMD, "--seed", optarg, UINT64_MAX, &seed); break;
    case 'd': device = optarg; break;
    case 'o': out = optarg; break;
    case 'h':
      printf("Usage:\n");
      help_data_cluster(stdout);
      return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (argc - optind != 1) return cli_usage_error(CMD, "expects one data set file, got %d", argc - optind);
  if (k < 1) return cli_usage_error(CMD, "needs the number of clusters: --k K");
  if (!out || !*out) return cli_usage_error(CMD, "needs the output file: -o OUT");
  const char *in = argv[optind];
  ut_runtime *rt = NULL;
  ut_dataset *ds = ut_dataset_open(in);
  if (!ds || !(rt = ut_runtime_open(&(ut_device_query){ .select = device }))) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    ut_dataset_close(ds);
    return CLI_FAILED;
  }
  float w[STYLE_CHANNELS * 27], b[STYLE_CHANNELS];
  style_cluster_report rep;
  ut_status s = vgg ? load_first_layer(rt, vgg, ut_dataset_channels(ds), w, b) : UT_OK;
  if (s == UT_OK) s = style_cluster_dataset(rt, ds, (int)k, seed, vgg ? w : NULL, vgg ? b : NULL, out, &rep);
  if (s != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    rc = CLI_FAILED;
  } else {
    printf("wrote %s: %d images in %lld style clusters (%s layer; k-means %s after %d iterations, inertia %.4g)\n",
           out, ut_dataset_count(ds), (long long)k, vgg ? "VGG16 first" : "random first", rep.converged ? "converged" : "capped",
           rep.iterations, rep.inertia);
  }
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  return rc;
}
